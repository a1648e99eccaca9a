"""Operator endpoints outside the public API contract (not in the served OpenAPI document):

    GET /readyz   readiness for a load balancer: database, Redis (when used), artifact store
    GET /metrics  Prometheus text format (Bearer BEATRA_METRICS_TOKEN when that is set)

/v1/health stays the contract's cheap static self-check; /readyz is the one that touches the
dependencies, and caches its answer for READY_CACHE_SECONDS so a busy prober costs little.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from beatra import config, metrics
from beatra.errors import ApiError, error_response
from beatra.extensions import db

log = logging.getLogger(__name__)

READY_CACHE_SECONDS = 1.0

blp = Blueprint("ops", __name__)


class _ReadyCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at = -1e9
        self.value: tuple[bool, dict[str, str]] = (False, {})


def _check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        db.session.commit()
        return "ok"
    except Exception as exc:
        db.session.rollback()
        return _failure(exc)


def probe_redis(app: Flask) -> Any:
    """A Redis client for probes (readiness, queue depth) with short timeouts: the broker's own
    client has none, and a blackholed Redis must not hang a health check."""
    client = app.extensions.get("beatra.probe_redis")
    if client is None:
        import redis

        url = app.extensions["beatra.settings"].redis_url
        client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        app.extensions["beatra.probe_redis"] = client
    return client


def _check_redis(app: Flask) -> str:
    if not app.extensions["beatra.settings"].redis_url:
        return "not_used"
    try:
        probe_redis(app).ping()
        return "ok"
    except Exception as exc:
        return _failure(exc)


def _check_storage() -> str:
    from beatra.storage.service import current_store

    try:
        current_store().check()
        return "ok"
    except Exception as exc:
        return _failure(exc)


def _failure(exc: BaseException) -> str:
    return f"error: {type(exc).__name__}: {exc}".splitlines()[0][:200]


def readiness(app: Flask) -> tuple[bool, dict[str, str]]:
    cache: _ReadyCache = app.extensions.setdefault("beatra.ready", _ReadyCache())
    now = time.monotonic()
    if now - cache.at < READY_CACHE_SECONDS:
        return cache.value
    with cache.lock:  # one check at a time; the others reuse its answer
        if time.monotonic() - cache.at < READY_CACHE_SECONDS:
            return cache.value
        checks = {"database": _check_database(), "redis": _check_redis(app),
                  "storage": _check_storage()}
        ok = all(v in ("ok", "not_used") for v in checks.values())
        if not ok:
            log.warning("not ready", extra={"fields": {"checks": checks}})
        cache.value, cache.at = (ok, checks), time.monotonic()
        return cache.value


@blp.route("/readyz", methods=["GET"])
def readyz() -> Response:
    ok, checks = readiness(current_app._get_current_object())  # type: ignore[attr-defined]
    if ok:
        return Response(orjson.dumps({"status": "ready", "checks": checks}),
                        mimetype="application/json")
    failing = [name for name, v in checks.items() if v not in ("ok", "not_used")]
    return error_response(ApiError(
        503, "service_unavailable", f"Not ready: {', '.join(failing)} unavailable.",
        retryable=True, details={"status": "not_ready", "checks": checks},
        headers={"Retry-After": "1"}))


@blp.route("/metrics", methods=["GET"], endpoint="metrics")
def scrape() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    token = current_app.extensions["beatra.settings"].metrics_token
    if token:
        supplied = request.headers.get("Authorization", "")
        if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
            raise ApiError(401, "unauthorized", "GET /metrics needs the metrics Bearer token.")
    return Response(exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def init_ops(app: Flask) -> None:
    app.register_blueprint(blp)


# --- /metrics: state read at scrape time -------------------------------------------------

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
    try:
        db.session.rollback()
    except Exception:
        log.debug("rollback after a failed metrics query failed", exc_info=True)


def _tasks() -> GaugeMetricFamily:
    """Unfinished tasks only: terminal counts only grow (the status index keeps this cheap)."""
    from sqlalchemy import func, select

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
    """Open holds (`holds.settled_at IS NULL`)."""
    count = db.session.execute(text("SELECT count(*) FROM holds WHERE settled_at IS NULL")
                               ).scalar_one()
    db.session.commit()
    family = GaugeMetricFamily("beatra_holds_open", "Credit holds not yet settled")
    family.add_metric([], count)
    return family


def _queues() -> GaugeMetricFamily:
    from dramatiq.brokers.redis import RedisBroker
    from flask import current_app

    from beatra.tasks.runtime import QUEUES, runtime_for

    family = GaugeMetricFamily("beatra_queue_depth", "Messages waiting in a broker queue",
                               labels=["queue"])
    runtime = runtime_for(current_app._get_current_object())  # type: ignore[attr-defined]  # werkzeug proxy
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
    directory = config.metrics_dir()
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        processes = generate_latest(registry)
    else:
        processes = generate_latest(metrics.REGISTRY)
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector())
    return processes + generate_latest(state)
