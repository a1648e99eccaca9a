"""The answer to a submission (202): the new task's first message is sent, its envelope returned."""

from __future__ import annotations

from typing import Any

from beatra.runtime import current_runtime
from beatra.tasks import serialize
from beatra.tasks.models import Task


def accepted(task: Task) -> dict[str, Any]:
    """`task` was just committed as queued (tasks.service.submit): enqueue it, render it."""
    current_runtime().send_task(task.id)
    return serialize.envelope(task)
