"""The sweeper: finds tasks whose message was lost and sends it again.

Lost means: queued but not picked up for `task_requeue_seconds` (a flushed Redis, a web process
killed between commit and enqueue), or running with an expired lease (a killed worker, or a
parked task whose delayed wake-up never arrived). It runs in every worker process (and in every
embedded web worker); a conditional stamp on `enqueued_at` makes concurrent sweepers send one
message per task per period, and a duplicate message is harmless anyway (claims are
conditional). The composition root (beatra.runtime) runs it with the other housekeeping.
"""

from __future__ import annotations

import logging

from beatra.tasks import states
from beatra.tasks.runtime import TaskRuntime

log = logging.getLogger(__name__)


def sweep(runtime: TaskRuntime) -> list[str]:
    """Re-enqueue lost tasks; returns their ids."""
    settings = runtime.settings
    requeue, lease = settings.task_requeue_seconds, settings.task_lease_seconds
    requeued = []
    for task_id in states.lost_candidates(requeue_seconds=requeue, lease_seconds=lease):
        if states.mark_requeued(task_id, requeue_seconds=requeue, lease_seconds=lease):
            runtime.enqueue(task_id)
            requeued.append(task_id)
    if requeued:
        log.warning("requeued lost tasks", extra={"fields": {"count": len(requeued),
                                                             "task_ids": requeued[:20]}})
    return requeued
