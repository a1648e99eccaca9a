"""Prometheus metrics: every metric object and the small functions that record them.

Multiprocess mode: when `PROMETHEUS_MULTIPROC_DIR` is set (gunicorn.conf.py sets a default for
the web workers; Dramatiq workers must be given the same directory), each process writes its
samples to files there and `/metrics` sums every process's figures. The variable must be set
before prometheus_client is first imported, i.e. in the environment of the process.

Facts that live in the database or the broker (tasks by status, open holds, queue depth) are
not counted here but read at scrape time by `beatra.ops.StateCollector`, so restarts and other
processes cannot make them drift.

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
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from beatra import config

log = logging.getLogger(__name__)

_multiproc_dir = config.metrics_dir()
if _multiproc_dir:
    # A task worker may start before gunicorn created it; metrics without labels open their
    # file right below.
    os.makedirs(_multiproc_dir, exist_ok=True)

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


_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, remembered: the hot path records the same few label sets on
    every request, and labels() checks and converts them every time."""
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


@_safe
def record_request(route: str, method: str, status: int, seconds: float) -> None:
    _child(HTTP_REQUESTS, route, method, str(status)).inc()
    _child(HTTP_DURATION, route).observe(seconds)


@_safe
def record_upstream(provider: str, model: str, outcome: str, seconds: float) -> None:
    """outcome: "ok", or a short failure class ("timeout", "connect", "http_5xx", "http_4xx",
    "http_429", …): keep it to a handful of values."""
    _child(UPSTREAM_REQUESTS, provider, model, outcome).inc()
    _child(UPSTREAM_DURATION, provider).observe(seconds)


@_safe
def record_charge(capability: str, amount: Decimal | float) -> None:
    if amount > 0:
        _child(CREDITS_CHARGED, capability).inc(float(amount))


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
