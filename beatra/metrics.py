"""Prometheus metrics: every metric object and the small functions that record them.

Multiprocess mode: when `PROMETHEUS_MULTIPROC_DIR` is set (gunicorn.conf.py sets a default for
the web workers; Dramatiq workers must be given the same directory), each process writes its
samples to files there and `/metrics` sums every process's figures. The variable must be set
before prometheus_client is first imported, i.e. in the environment of the process.

Facts that live in the database or the broker (tasks by status, open holds, queue depth) are
not counted here but read at scrape time by `StateCollector`, so restarts and other processes
cannot make them drift.

Recording functions for code owned elsewhere (call them; they never raise into a request):
    record_upstream(provider, model, outcome, seconds)   one upstream HTTP call finished
    record_charge(capability, amount)                    credits captured
    record_refund(amount)                                credits refunded
    set_circuit(model, provider, is_open)                a circuit opened or closed
    stream_started() / stream_ended()                    (beatra.accesslog calls these for
                                                         every text/event-stream response)
    record_webhook(outcome)                              a webhook attempt's outcome
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
if os.environ.get(MULTIPROC_DIR_ENV):
    # A task worker may start before gunicorn created it; metrics without labels open their
    # file right below.
    os.makedirs(os.environ[MULTIPROC_DIR_ENV], exist_ok=True)

# Our own registry: in multiprocess mode the values live in files and a fresh registry reads
# them at scrape; in single-process mode (tests, `flask run`) this registry is scraped directly.
REGISTRY = CollectorRegistry(auto_describe=True)

# Streams run for minutes; the default buckets stop at 10 s.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
                     600, float("inf"))

HTTP_REQUESTS = Counter("beatra_http_requests", "HTTP requests answered",
                        ["route", "method", "status"], registry=REGISTRY)
HTTP_DURATION = Histogram("beatra_http_request_duration_seconds",
                          "HTTP request duration; streamed responses until their last byte",
                          ["route"], buckets=_DURATION_BUCKETS, registry=REGISTRY)
UPSTREAM_REQUESTS = Counter("beatra_upstream_requests", "Upstream provider calls",
                            ["provider", "model", "outcome"], registry=REGISTRY)
UPSTREAM_DURATION = Histogram("beatra_upstream_duration_seconds",
                              "Upstream provider call duration", ["provider"],
                              buckets=_DURATION_BUCKETS, registry=REGISTRY)
CREDITS_CHARGED = Counter("beatra_credits_charged", "Credits captured", ["capability"],
                          registry=REGISTRY)
CREDITS_REFUNDED = Counter("beatra_credits_refunded", "Credits refunded", registry=REGISTRY)
WEBHOOK_DELIVERIES = Counter("beatra_webhook_deliveries",
                             "Webhook delivery attempts by outcome", ["outcome"],
                             registry=REGISTRY)
# Breaker state is per process; "max" over live processes: open if any live process has it open.
CIRCUIT_OPEN = Gauge("beatra_circuit_open", "1 while a route's circuit is open",
                     ["model", "provider"], multiprocess_mode="livemax", registry=REGISTRY)
STREAMS_ACTIVE = Gauge("beatra_streams_active", "SSE streams being relayed now",
                       multiprocess_mode="livesum", registry=REGISTRY)


def _safe(fn: Any) -> Any:
    """Metrics must never break the work they observe."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            log.warning("metric update failed", exc_info=True)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@_safe
def record_request(route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_DURATION.labels(route).observe(seconds)


@_safe
def record_upstream(provider: str, model: str, outcome: str, seconds: float) -> None:
    """outcome: "ok", or a short failure class ("timeout", "connect", "http_5xx", "http_4xx",
    "http_429", …): keep it to a handful of values."""
    UPSTREAM_REQUESTS.labels(provider, model, outcome).inc()
    UPSTREAM_DURATION.labels(provider).observe(seconds)


@_safe
def record_charge(capability: str, amount: Decimal | float) -> None:
    if amount > 0:
        CREDITS_CHARGED.labels(capability).inc(float(amount))


@_safe
def record_refund(amount: Decimal | float) -> None:
    if amount > 0:
        CREDITS_REFUNDED.inc(float(amount))


@_safe
def record_webhook(outcome: str) -> None:
    """outcome: delivered | retrying | failed."""
    WEBHOOK_DELIVERIES.labels(outcome).inc()


@_safe
def set_circuit(model: str, provider: str, is_open: bool) -> None:
    CIRCUIT_OPEN.labels(model, provider).set(1 if is_open else 0)


@_safe
def stream_started() -> None:
    STREAMS_ACTIVE.inc()


@_safe
def stream_ended() -> None:
    STREAMS_ACTIVE.dec()


# --- scrape ---------------------------------------------------------------------------------


class StateCollector(Collector):
    """Gauges read from the database and the broker when scraped (needs an app context).
    A source that is down is skipped (and logged): the rest of the scrape still answers."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, fn in (("tasks", _tasks), ("holds", _holds), ("queue", _queues)):
            try:
                family = fn()
            except Exception as exc:
                log.warning("metrics source unavailable", extra={"fields": {
                    "source": name, "error": f"{type(exc).__name__}: {exc}"[:300]}})
                _rollback()
                continue
            if family is not None:
                yield family


def _rollback() -> None:
    from beatra.extensions import db

    try:
        db.session.rollback()
    except Exception:
        log.debug("rollback after a failed metrics query failed", exc_info=True)


def _tasks() -> GaugeMetricFamily:
    """Unfinished tasks only: terminal counts only grow (the status index keeps this cheap)."""
    from sqlalchemy import func, select

    from beatra.extensions import db
    from beatra.tasks.models import Task

    family = GaugeMetricFamily("beatra_tasks", "Unfinished tasks by capability and status",
                               labels=["capability", "status"])
    rows = db.session.execute(
        select(Task.capability, Task.status, func.count())
        .where(Task.status.in_(("queued", "running")))
        .group_by(Task.capability, Task.status)).all()
    db.session.commit()
    for capability, status, count in rows:
        family.add_metric([capability, status], count)
    return family


def _holds() -> GaugeMetricFamily | None:
    """Open holds (`holds.settled_at IS NULL`); skipped until the holds table exists."""
    from sqlalchemy import inspect, text

    from beatra.extensions import db

    if not inspect(db.engine).has_table("holds"):
        return None
    count = db.session.execute(text("SELECT count(*) FROM holds WHERE settled_at IS NULL")
                               ).scalar_one()
    db.session.commit()
    family = GaugeMetricFamily("beatra_holds_open", "Credit holds not yet settled")
    family.add_metric([], count)
    return family


def _queues() -> GaugeMetricFamily:
    from dramatiq.brokers.redis import RedisBroker
    from flask import current_app

    from beatra.ops import probe_redis
    from beatra.tasks.runtime import QUEUES, current_runtime

    family = GaugeMetricFamily("beatra_queue_depth", "Messages waiting in a broker queue",
                               labels=["queue"])
    runtime = current_runtime()
    broker = runtime.broker
    for queue in QUEUES:
        if isinstance(broker, RedisBroker):
            # Dramatiq's Redis layout: the ready list is `<namespace>:<queue>`, delayed
            # messages wait in `<queue>.DQ`. The probe client has short timeouts.
            client = probe_redis(current_app._get_current_object())  # type: ignore[attr-defined]
            ready = client.llen(f"{broker.namespace}:{queue}")
            delayed = client.llen(f"{broker.namespace}:{queue}.DQ")
            depth = ready + delayed
        else:  # embedded: the in-process StubBroker
            depth = sum(q.qsize() for name, q in broker.queues.items()
                        if name in (queue, f"{queue}.DQ"))
        family.add_metric([queue], depth)
    return family


def exposition() -> bytes:
    """The text format for GET /metrics: process metrics (summed over every process in
    multiprocess mode) followed by the state gauges read now."""
    directory = os.environ.get(MULTIPROC_DIR_ENV)
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        processes = generate_latest(registry)
    else:
        processes = generate_latest(REGISTRY)
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector())
    return processes + generate_latest(state)
