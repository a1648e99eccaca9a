"""The interface between the engine and a capability: a handler runs one step of a task.

A handler is `run(ctx: TaskContext) -> Done | Wait`. It may raise TaskFailure to end the task
`failed` (the engine refunds), call `ctx.checkpoint()` wherever stopping is safe (cancel), and
return Wait(seconds) to be called again later without holding a worker ("check again in N
seconds": the engine parks the task and sends a delayed message). Handlers are looked up by
capability, lazily, so the worker process imports only what it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from beatra.tasks.context import TaskContext

# capability → "module:function". A new async capability adds one line here.
HANDLERS: dict[str, str] = {
    "images.generations": "beatra.images.handler:run_image_task",
    "images.image_to_image": "beatra.images.handler:run_image_task",
    "music.text_to_music": "beatra.music.handler:run_music_task",
    "music.reference_audio_to_music": "beatra.music.handler:run_music_task",
}


@dataclass(frozen=True)
class Done:
    """The work is finished: `output` goes on the envelope, `meters` are billed with the price
    snapshot taken at submission, `usage` holds the UsageObject counters (input_tokens, …)."""

    output: dict[str, Any]
    meters: dict[str, Decimal | int] = field(default_factory=dict)
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
_loaded: dict[str, Handler] = {}


def handler_for(capability: str) -> Handler:
    handler = _loaded.get(capability)
    if handler is None:
        path = HANDLERS.get(capability)
        if path is None:
            raise TaskFailure("internal_error", f"No handler for capability {capability!r}.")
        module, _, name = path.partition(":")
        handler = _loaded[capability] = getattr(importlib.import_module(module), name)
    return handler
