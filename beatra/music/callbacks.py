"""sunoapi.org callbacks: the required `callBackUrl` points here, and a callback may only wake
its task early — results always come from polling record-info, never from the callback body.

The URL carries our task id and an HMAC of it (BEATRA_SECRET_KEY), so a callback finds its task
by primary key and nobody can poke tasks they did not create; the upstream taskId in the body
must also match the one the task stored when it submitted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from typing import Any

from beatra.config import current_settings
from beatra.extensions import db
from beatra.providers import suno_api
from beatra.storage.signing import signing_key
from beatra.tasks.models import Task
from beatra.tasks.runtime import TaskRuntime

log = logging.getLogger(__name__)

PATH = "/v1/callbacks/suno"
# Callback stages that mean the upstream task is finished (or failed): worth a poll now.
WAKING_TYPES = frozenset({"complete", "error"})


def _sig(task_id: str) -> str:
    key = signing_key(current_settings())
    digest = hmac.new(key, f"suno-callback:{task_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def callback_url(task_id: str) -> str:
    base = current_settings().public_url
    return f"{base}{PATH}?task={task_id}&sig={_sig(task_id)}"


def valid(task_id: str | None, sig: str | None) -> bool:
    return bool(task_id and sig and len(task_id) <= 40
                and hmac.compare_digest(_sig(task_id).encode(), sig.encode()))


def handle(task_id: str, body: Any, runtime: TaskRuntime) -> bool:
    """Wake the task when this callback says its upstream job ended. True if it was woken."""
    upstream_id, kind, code = suno_api.callback_task_id(body)
    finished = kind in WAKING_TYPES or (code is not None and code != 200)
    task = db.session.get(Task, task_id)
    parked = task is not None and task.status == "running" and task.wake_at is not None
    stored = ((task.state or {}).get("suno") or {}).get("task_id") if task is not None else None
    db.session.commit()
    if not (finished and parked and upstream_id and upstream_id == stored):
        return False
    # The claim is conditional: if a worker is polling right now this message is a no-op.
    runtime.send_task(task_id)
    log.info("suno callback woke task", extra={"fields": {"task_id": task_id, "type": kind}})
    return True
