"""Idempotency-Key for the synchronous image calls: the key names the task, not a response.

The app-level handling (beatra.idempotency.hooks) stores a finished response and forgets the
key on a 5xx. Here that would charge twice: the answer to a wait that timed out is a 504 while
the task still runs, and a b64_json answer may be too large to store. So these views take the
key themselves (same record store, same fingerprint, same 409/422 answers) and store only the
id of the task they queued, as soon as it is queued: a retry with the same key waits on the same
task and gets the same images, charged once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from flask import current_app, request

from beatra.errors import invalid
from beatra.extensions import db
from beatra.idempotency import store
from beatra.idempotency.hooks import KEY_HEADER, KEY_MAX, fingerprint, require_replayable
from beatra.tasks import service as tasks
from beatra.tasks.models import Task


def own_idempotency(func: Callable[..., Any]) -> Callable[..., Any]:
    """Keeps the view documented with the Idempotency-Key header but out of the app-level
    handling (that marks views with `idempotent`, which `operation()` set)."""
    func.idempotent = False  # type: ignore[attr-defined]
    return func


def idempotency_key() -> str | None:
    key = request.headers.get(KEY_HEADER)
    if key is not None and not (1 <= len(key) <= KEY_MAX
                                and all(32 <= ord(c) < 127 for c in key)):
        raise invalid(f"{KEY_HEADER} must be 1-{KEY_MAX} printable ASCII characters.",
                      f"/{KEY_HEADER}")
    return key


def submit_once(account_id: str, submit: Callable[[], Task]) -> tuple[Task, bool]:
    """(task, replayed): the task this request's Idempotency-Key names, queued by `submit` on
    first use. Without a key every call queues a task."""
    key = idempotency_key()
    if key is None:
        return submit(), False
    settings = current_app.extensions["beatra.settings"]
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    fp = fingerprint()
    outcome = store.acquire(account_id, f"POST {rule}", key, fp,
                            ttl_seconds=settings.idempotency_ttl_seconds,
                            lease_seconds=settings.idempotency_lease_seconds)
    if isinstance(outcome, store.Owned):
        try:
            task = submit()
        except BaseException:
            db.session.rollback()
            store.release(outcome)  # nothing was queued: a retry should try again
            raise
        store.complete(outcome, 202, {"Content-Type": "application/json"},
                       orjson.dumps({"task_id": task.id}))
        return task, False
    require_replayable(outcome, fp)
    task_id = orjson.loads(outcome.response_body or b"{}").get("task_id")
    return tasks.get_task(account_id, task_id), True
