"""The Dramatiq side of the task engine: one broker per app, the task actor, the embedded runner,
and the background loop (heartbeats + sweeper) that runs beside every worker.

The runtime knows how to send and run messages, not what they do: the jobs (run a task step,
deliver a webhook, sweep) and the capability handlers are given to it by the composition root
(beatra.runtime), so nothing here imports the engine, the sweeper or the webhooks.

With REDIS_URL: a RedisBroker; the web process only enqueues, separate `dramatiq
beatra.tasks.worker` processes run the actor (and their own background loop). Without it
(embedded): a StubBroker plus a dramatiq Worker inside the web process, started when wsgi.py
loads the app in a gunicorn worker (or by the first enqueue, e.g. under the Flask test client) —
never at import, so gunicorn's master and `flask db upgrade` start no threads. Under gevent
those threads are greenlets.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware
from flask import Flask

from beatra.config import Settings
from beatra.tasks import states

if TYPE_CHECKING:
    from beatra.tasks.handlers import Handler

log = logging.getLogger(__name__)

EXTENSION_KEY = "beatra.tasks"
QUEUE = "beatra-tasks"
ACTOR_NAME = "beatra_run_task"
WEBHOOK_ACTOR_NAME = "beatra_deliver_webhook"
# Webhook deliveries have a queue of their own: a burst of task steps must not delay them.
# `dramatiq beatra.tasks.worker` consumes both (or run `--queues beatra-webhooks` apart).
WEBHOOK_QUEUE = "beatra-webhooks"
QUEUES = (QUEUE, WEBHOOK_QUEUE)
# One step may wait on a slow upstream (image calls take 1-2 minutes, read timeout 300 s, and
# a model may have several routes); past this Dramatiq interrupts it and the retry re-claims.
STEP_TIME_LIMIT_MS = 20 * 60 * 1000
# Retries cover crashes (a DB blip, a bug); the task's attempt counter bounds them overall.
MAX_RETRIES = 3
MIN_BACKOFF_MS = 500
MAX_BACKOFF_MS = 15_000

_runtimes: weakref.WeakSet[TaskRuntime] = weakref.WeakSet()


class Heartbeats:
    """Claim tokens of the tasks this process is running right now."""

    def __init__(self) -> None:
        self._tokens: set[str] = set()
        self._lock = threading.Lock()

    def add(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)

    def discard(self, token: str) -> None:
        with self._lock:
            self._tokens.discard(token)

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self._tokens)


@dataclass(frozen=True)
class Jobs:
    """What the messages and the background loop do, each run inside the app context."""

    run_task: Callable[[str, TaskRuntime], None]  # one step of a task
    deliver_webhook: Callable[[str, TaskRuntime], object]  # one webhook delivery attempt
    sweep: Callable[[TaskRuntime], object]  # re-send lost work, purge expired records


class TaskRuntime:
    def __init__(self, app: Flask, settings: Settings, jobs: Jobs,
                 handlers: Mapping[str, Handler]) -> None:
        self.app = app
        self.settings = settings
        self.jobs = jobs
        self.handlers = handlers  # capability → the handler that runs its steps
        self.embedded = not self.settings.redis_url
        self.heartbeats = Heartbeats()
        self._lock = threading.RLock()
        self._broker: dramatiq.Broker | None = None
        self._actor: dramatiq.Actor[Any, Any] | None = None
        self._webhook_actor: dramatiq.Actor[Any, Any] | None = None
        self._worker: dramatiq.Worker | None = None
        self._background: Background | None = None
        _runtimes.add(self)

    # --- broker and actor ---------------------------------------------------------------

    @property
    def broker(self) -> dramatiq.Broker:
        if self._broker is None:
            with self._lock:
                if self._broker is None:
                    self._build()
        assert self._broker is not None
        return self._broker

    @property
    def actor(self) -> dramatiq.Actor[Any, Any]:
        self.broker  # noqa: B018  (builds the actor with the broker)
        assert self._actor is not None
        return self._actor

    def _build(self) -> None:
        broker: dramatiq.Broker
        broker = StubBroker() if self.embedded else RedisBroker(url=self.settings.redis_url)
        broker.add_middleware(_BackgroundMiddleware(self))
        self._actor = dramatiq.actor(
            broker=broker, actor_name=ACTOR_NAME, queue_name=QUEUE,
            max_retries=MAX_RETRIES, min_backoff=MIN_BACKOFF_MS, max_backoff=MAX_BACKOFF_MS,
            time_limit=STEP_TIME_LIMIT_MS,
        )(self._perform)
        self._webhook_actor = dramatiq.actor(
            broker=broker, actor_name=WEBHOOK_ACTOR_NAME,
            queue_name=WEBHOOK_QUEUE, max_retries=MAX_RETRIES, min_backoff=MIN_BACKOFF_MS,
            max_backoff=MAX_BACKOFF_MS, time_limit=60_000,
        )(self._deliver_webhook)
        self._broker = broker

    def _perform(self, task_id: str) -> None:
        from beatra.logs import log_context

        with self.app.app_context(), log_context(task_id=task_id,
                                                 request_id=_submitted_by(task_id)):
            self.jobs.run_task(task_id, self)

    def _deliver_webhook(self, task_id: str) -> None:
        from beatra.logs import log_context

        with self.app.app_context(), log_context(task_id=task_id,
                                                 request_id=_submitted_by(task_id)):
            self.jobs.deliver_webhook(task_id, self)

    def enqueue_webhook(self, task_id: str, *, delay_seconds: float = 0) -> None:
        """Send one webhook delivery attempt for a task (after `delay_seconds`)."""
        if self.embedded:
            self.start()
        self.broker  # noqa: B018  (builds the actors)
        assert self._webhook_actor is not None
        delay = int(delay_seconds * 1000) or None
        self._webhook_actor.send_with_options(args=(task_id,), delay=delay)

    def enqueue(self, task_id: str, *, delay_seconds: float = 0) -> None:
        """Send the one message a task step needs: its id (after `delay_seconds`)."""
        if self.embedded:
            self.start()
        delay = int(delay_seconds * 1000) or None
        self.actor.send_with_options(args=(task_id,), delay=delay)

    def send_task(self, task_id: str) -> None:
        """Enqueue a step after the commit that made it due; if the broker is unreachable the
        task is safe in the database and the sweeper sends it later."""
        try:
            self.enqueue(task_id)
        except Exception:
            log.exception("could not enqueue task; the sweeper will",
                          extra={"fields": {"task_id": task_id}})

    def send_webhook(self, task_id: str, *, delay_seconds: float = 0) -> None:
        """Enqueue a delivery attempt; if the broker is unreachable the sweeper sends it later."""
        try:
            self.enqueue_webhook(task_id, delay_seconds=delay_seconds)
        except Exception:
            log.exception("could not enqueue webhook delivery; the sweeper will",
                          extra={"fields": {"task_id": task_id}})

    def announce(self, ended: states.Ended | None) -> None:
        """After a transition that ended a task: send the callback it recorded, if any."""
        if ended is not None and ended.callback_due:
            self.send_webhook(ended.task_id)

    # --- the embedded runner ------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._worker is not None

    def start(self) -> None:
        """Embedded mode: run the actor (and the background loop) in this process."""
        if self._worker is not None or not self.embedded:
            return
        with self._lock:
            if self._worker is not None:
                return
            broker = self.broker
            broker.emit_after("process_boot")  # TimeLimit's watchdog, as `dramatiq` would
            worker = dramatiq.Worker(broker, worker_threads=self.settings.task_worker_threads,
                                     worker_timeout=int(self.settings.task_poll_seconds * 1000))
            worker.start()
            self._worker = worker
            log.info("embedded task runner started",
                     extra={"fields": {"threads": self.settings.task_worker_threads}})

    def stop(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop(timeout=10_000)
        self.stop_background()

    def join(self, timeout_seconds: float = 30) -> None:
        """Wait until every queued message (delayed ones too) has been processed. Tests only."""
        broker = self.broker
        if isinstance(broker, StubBroker) and self._worker is not None:
            # Both queues, until neither has work: a task ending enqueues a webhook and a
            # delivery retry may be scheduled after the task queue drained.
            deadline = time.monotonic() + timeout_seconds
            while True:
                for queue in QUEUES:
                    left_ms = max(1, int((deadline - time.monotonic()) * 1000))
                    broker.join(queue, timeout=left_ms, fail_fast=False)
                self._worker.join()
                if all(broker.queues[q].unfinished_tasks == 0 for q in broker.queues):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("task queues did not drain")

    # --- the background loop --------------------------------------------------------------

    def start_background(self) -> None:
        with self._lock:
            if self._background is None:
                self._background = Background(self)
                self._background.start()

    def stop_background(self) -> None:
        with self._lock:
            background, self._background = self._background, None
        if background is not None:
            background.stop()


def _submitted_by(task_id: str) -> str | None:
    """The request id that submitted a task, for the worker's log lines (needs an app
    context). None when the database cannot say: the step itself will report that."""
    from sqlalchemy import select

    from beatra.extensions import db
    from beatra.tasks.models import Task

    try:
        rid = db.session.scalar(select(Task.request_id).where(Task.id == task_id))
        db.session.commit()
        return rid
    except Exception:
        db.session.rollback()
        log.debug("could not read a task's request id", exc_info=True)
        return None


class _BackgroundMiddleware(Middleware):
    """Heartbeats and the sweeper live exactly as long as a Worker on this broker does."""

    def __init__(self, runtime: TaskRuntime) -> None:
        self.runtime = weakref.proxy(runtime)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.runtime.start_background()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.runtime.stop_background()


class Background(threading.Thread):
    """Every heartbeat interval: renew the leases of this process's running tasks. Every sweep
    interval (and once at start, to pick up work lost before a restart): re-enqueue lost tasks.
    """

    def __init__(self, runtime: TaskRuntime) -> None:
        super().__init__(name="beatra-task-background", daemon=True)
        self.runtime = runtime
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()
        if self is not threading.current_thread():
            self.join(timeout=10)

    def run(self) -> None:
        settings = self.runtime.settings
        next_sweep = 0.0
        while not self._stopping.is_set():
            try:
                with self.runtime.app.app_context():
                    states.renew(self.runtime.heartbeats.snapshot(),
                                 lease_seconds=settings.task_lease_seconds)
                    if time.monotonic() >= next_sweep:
                        self.runtime.jobs.sweep(self.runtime)
                        next_sweep = time.monotonic() + settings.task_sweep_seconds
            except Exception:
                # The loop must outlive a DB or broker outage; the next tick tries again.
                log.exception("task background loop error")
            wait = min(settings.task_heartbeat_seconds,
                       max(0.05, next_sweep - time.monotonic()))
            self._stopping.wait(wait)


def runtime_for(app: Flask) -> TaskRuntime:
    """The runtime the app factory built for `app` (beatra.runtime.build_runtime)."""
    runtime: TaskRuntime = app.extensions[EXTENSION_KEY]
    return runtime


def start_embedded_runner(app: Flask) -> None:
    """For the web entry point (wsgi.py, imported in each gunicorn worker after gevent has
    patched): without REDIS_URL, run tasks in this process from the start, so work queued before
    a restart resumes without waiting for a new submission. With REDIS_URL it does nothing."""
    runtime = runtime_for(app)
    if runtime.embedded:
        runtime.start()


def stop_all() -> None:
    """Stop every runtime in this process (tests build many apps)."""
    for runtime in list(_runtimes):
        runtime.stop()
