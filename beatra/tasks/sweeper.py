"""The sweeper: finds tasks whose message was lost and sends it again.

Lost means: queued but not picked up for `task_requeue_seconds` (a flushed Redis, a web process
killed between commit and enqueue), or running with an expired lease (a killed worker, or a
parked task whose delayed wake-up never arrived). It runs in every worker process (and in every
embedded web worker); a conditional stamp on `enqueued_at` makes concurrent sweepers send one
message per task per period, and a duplicate message is harmless anyway (claims are
conditional).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from beatra.billing import holds
from beatra.tasks import states

if TYPE_CHECKING:
    from beatra.tasks.runtime import TaskRuntime

log = logging.getLogger(__name__)


def sweep(runtime: TaskRuntime) -> list[str]:
    """Re-enqueue lost tasks; returns their ids."""
    settings = runtime.settings
    periods = {"requeue_seconds": settings.task_requeue_seconds,
               "lease_seconds": settings.task_lease_seconds}
    requeued = []
    for task_id in states.lost_candidates(**periods):
        if states.mark_requeued(task_id, **periods):
            runtime.enqueue(task_id)
            requeued.append(task_id)
    if requeued:
        log.warning("requeued lost tasks", extra={"fields": {"count": len(requeued),
                                                             "task_ids": requeued[:20]}})
    sweep_webhooks(runtime)
    holds.reap_expired()
    return requeued


def sweep_webhooks(runtime: TaskRuntime) -> list[str]:
    """Re-send webhook deliveries whose attempt is overdue and unowned, and drop expired
    Idempotency-Key records. Returns the task ids whose delivery was re-sent."""
    from beatra.idempotency import store
    from beatra.webhooks import outbox
    from beatra.webhooks.delivery import send

    grace = runtime.settings.task_requeue_seconds
    resent = []
    for task_id in outbox.overdue(grace_seconds=grace):
        if outbox.mark_requeued(task_id, grace_seconds=grace):
            send(runtime, task_id)
            resent.append(task_id)
    if resent:
        log.warning("re-sent lost webhook deliveries",
                    extra={"fields": {"count": len(resent), "task_ids": resent[:20]}})
    store.purge_expired()
    return resent
