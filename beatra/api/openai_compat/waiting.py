"""Waiting for a task inside a request, bounded, without holding a database connection.

The task row is the source of truth and there is no cross-process event for "task ended", so
the wait polls the row's status with a short query and sleeps in between. Each poll ends its
transaction at once (the connection goes back to the pool), and `time.sleep` yields to other
greenlets under gunicorn's gevent worker, so a thousand waiting clients cost a thousand idle
greenlets, not connections or CPU.
"""

from __future__ import annotations

import math
import time

from flask import current_app, request
from sqlalchemy import select

from beatra.config import OPENAI_WAIT_MAX_SECONDS
from beatra.extensions import db
from beatra.tasks.models import TERMINAL, Task

DEFAULT_WAIT_SECONDS = OPENAI_WAIT_MAX_SECONDS
WAIT_SETTING = "OPENAI_WAIT_SECONDS"  # app.config, set by register() from the settings
FIRST_POLL_SECONDS = 0.2
MAX_POLL_SECONDS = 1.0
# The SDKs tell us how long they will wait for a byte: Python sends its read timeout, Node its
# whole-request timeout (both in seconds).
TIMEOUT_HEADERS = ("X-Stainless-Read-Timeout", "X-Stainless-Timeout")


def _client_timeout() -> float | None:
    for name in TIMEOUT_HEADERS:
        try:
            value = float(request.headers.get(name, ""))
        except ValueError:
            continue
        if math.isfinite(value) and value > 0:
            return value
    return None


def wait_budget() -> float:
    """Seconds to wait: the setting (at most), shortened so the answer (the timeout error with
    the task id) reaches the client before its own timeout fires."""
    budget = float(current_app.config.get(WAIT_SETTING, DEFAULT_WAIT_SECONDS))
    client = _client_timeout()
    if client is not None:
        budget = min(budget, max(client / 2, client - 2))
    return max(0.0, budget)


def _status(account_id: str, task_id: str) -> str | None:
    status = db.session.scalar(
        select(Task.status).where(Task.id == task_id, Task.account_id == account_id))
    db.session.commit()  # end the read: no connection or snapshot held while sleeping
    return status


def wait_until_terminal(account_id: str, task_id: str, seconds: float) -> bool:
    """True once the task is terminal; False if it is still active after `seconds`."""
    deadline = time.monotonic() + seconds
    interval = FIRST_POLL_SECONDS
    while True:
        if _status(account_id, task_id) in TERMINAL:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(interval, remaining))
        interval = min(interval * 1.5, MAX_POLL_SECONDS)
