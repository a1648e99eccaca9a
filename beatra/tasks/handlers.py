"""The interface between the engine and a capability: a handler runs one step of a task.

A handler is `run(ctx: TaskContext) -> Done | Wait`. It may raise TaskFailure to end the task
`failed` (the engine refunds), call `ctx.checkpoint()` wherever stopping is safe (cancel), and
return Wait(seconds) to be called again later without holding a worker ("check again in N
seconds": the engine parks the task and sends a delayed message). The composition root
(beatra.runtime) maps each capability to its handler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from beatra.tasks.context import TaskContext


@dataclass(frozen=True)
class Done:
    """The work is finished: `output` goes on the envelope, `meters` are billed with the price
    snapshot taken at submission, `usage` holds the UsageObject counters (input_tokens, …)."""

    output: dict[str, Any]
    meters: Mapping[str, Decimal | int] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Wait:
    """Call the handler again after `seconds`; `state` (if given) replaces the task's state."""

    seconds: float
    state: dict[str, Any] | None = None


class TaskFailure(Exception):
    """End the task `failed` with this public TaskError (and a full refund)."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable

    def as_error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


Handler = Callable[["TaskContext"], "Done | Wait"]
