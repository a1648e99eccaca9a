"""Redelivering one task's callback on request."""

from __future__ import annotations

from typing import Any

from beatra.errors import ApiError
from beatra.tasks import serialize
from beatra.tasks.runtime import TaskRuntime
from beatra.tasks.service import get_task
from beatra.webhooks import endpoints, outbox


def redeliver(account_id: str, task_id: str, runtime: TaskRuntime) -> dict[str, Any]:
    """Start the task's callback over: attempt count 0, the same event id, sent now.
    404 for a task that is not the caller's; 409 while the task is still active; 422 when
    the account has no active webhook endpoint. Returns the task envelope as rescheduled,
    read before the send so the answer does not depend on how fast the delivery runs."""
    task = get_task(account_id, task_id)
    if not task.terminal:
        raise ApiError(409, "task_not_terminal",
                       f"The task is {task.status}; its callback is sent when it ends.",
                       retryable=True, headers={"Retry-After": "5"})
    endpoint = endpoints.get(account_id)
    if endpoint is None or endpoint.status != "active":
        state = "no webhook endpoint" if endpoint is None else "a disabled webhook endpoint"
        raise ApiError(422, "webhook_not_configured",
                       f"The account has {state}; PUT /v1/webhook-endpoint first.")
    outbox.reset(account_id, task.id, task.status, endpoint.url)
    rescheduled = serialize.envelope(get_task(account_id, task_id))
    runtime.send_webhook(task.id)
    return rescheduled
