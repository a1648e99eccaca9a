"""The composition root of the background side: which handler runs each capability, and what
the task runtime's messages and background loop do. `create_app` calls `build_runtime` once.

Only this module (and the app factory, the entry points and the API layer, which read the
built runtime) knows every piece; the pieces know only what they are given: the engine gets the
handlers through the runtime, the webhook delivery and the sweeper get the runtime to enqueue
with, and state transitions return what happened for their callers to act on.
"""

from __future__ import annotations

from flask import Flask, current_app

from beatra import metrics
from beatra.billing import holds
from beatra.config import Settings
from beatra.idempotency import store as idempotency_store
from beatra.images.handler import run_image_task
from beatra.music.handler import run_music_task
from beatra.tasks import engine, sweeper
from beatra.tasks.handlers import Handler
from beatra.tasks.runtime import EXTENSION_KEY, Jobs, TaskRuntime, runtime_for
from beatra.webhooks import delivery

# capability → handler. A new async capability adds one line here.
HANDLERS: dict[str, Handler] = {
    "images.generations": run_image_task,
    "images.image_to_image": run_image_task,
    "music.text_to_music": run_music_task,
    "music.reference_audio_to_music": run_music_task,
}


def housekeeping(runtime: TaskRuntime) -> None:
    """The background loop's periodic sweep: lost task messages, lost webhook deliveries,
    chat holds whose process died, expired Idempotency-Key records."""
    sweeper.sweep(runtime)
    delivery.resend_overdue(runtime)
    holds.reap_expired()
    idempotency_store.purge_expired()


def deliver_webhook(task_id: str, runtime: TaskRuntime) -> str | None:
    outcome = delivery.deliver(task_id, runtime)
    if outcome is not None:
        metrics.record_webhook(outcome)
    return outcome


JOBS = Jobs(run_task=engine.execute, deliver_webhook=deliver_webhook, sweep=housekeeping)


def build_runtime(app: Flask, settings: Settings) -> TaskRuntime:
    runtime = TaskRuntime(app, settings, JOBS, HANDLERS)
    app.extensions[EXTENSION_KEY] = runtime
    return runtime


def current_runtime() -> TaskRuntime:
    """For the API layer: the runtime of the app serving this request."""
    return runtime_for(current_app)
