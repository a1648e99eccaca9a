"""gunicorn settings. Keep imports minimal: the gevent worker must patch before ssl/urllib3 load,
which is also why there is no preload_app (and why the master's JSON formatter and the metrics
hooks below use the standard library only, not the beatra package)."""

import gc
import glob
import json
import logging
import os
import time

from gunicorn.glogging import Logger  # already loaded by gunicorn itself

bind = os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Each SSE stream holds one greenlet; 1,000+ concurrent streams per worker is the design point.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "2000"))
# With gevent the worker heartbeat is independent of request length, so minutes-long streams
# are not killed by this; it only catches a worker whose event loop is truly stuck.
timeout = 120
graceful_timeout = 60
keepalive = 75
preload_app = False
# gunicorn >= 25 opens a control socket (for `gunicornc`) at one path per user by default
# ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl), so every instance on a host
# would share it. beatra needs none: it is off unless GUNICORN_CONTROL_SOCKET names a path for
# this instance. (Older gunicorn ignores both names.)
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET")
if _control_socket:
    control_socket = _control_socket
control_socket_disable = not _control_socket
accesslog = None  # the app logs one JSON line per request with its request id


class _AppWritesTheAccessLog(Logger):
    """gunicorn's logger without its access line: with a logconfig_dict set, gunicorn builds
    the line's fields for every request even though its access logger drops them. The app
    writes the access line itself (beatra.accesslog: request id, route, outcome, credits)."""

    def access(self, resp: object, req: object, environ: object, request_time: object) -> None:
        return None


logger_class = _AppWritesTheAccessLog


def pre_request(worker, req) -> None:
    """No-op: gunicorn's default logs every request at DEBUG (the app's access line says it)."""
errorlog = "-"


def post_worker_init(worker):
    # 400/414/431 that gunicorn answers itself carry our error envelope (beatra.gunicorn_errors);
    # a response's head and first body bytes leave in one write (beatra.gunicorn_writes);
    # a stopping worker closes idle keep-alive connections at once (beatra.gunicorn_drain).
    from beatra import gunicorn_drain, gunicorn_errors, gunicorn_writes

    gunicorn_errors.install(worker)
    gunicorn_writes.install(worker)
    gunicorn_drain.install(worker)
    # The app's objects live as long as the worker: keep them out of every collection, and
    # collect the young generation less often. A burst of 1,000 streams holds many live objects
    # that each full collection walked; measured: the burst's first-byte p99 about 12% lower.
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)
# --- logs: one JSON object per line ------------------------------------------------------------


class JsonLineFormatter(logging.Formatter):
    """The master's lines (boot, worker exits, HUP). In each worker the app swaps in
    beatra.logs.JsonFormatter (same keys, plus request_id) for handlers marked `beatra_json`."""

    beatra_json = True

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


# gunicorn merges this over its defaults; its own loggers get no handlers and propagate to the
# root's single JSON handler, so nothing is printed twice. gunicorn writes no access line
# (logger_class above); the app writes one, with request id, route and duration, when the
# response ends.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JsonLineFormatter}},
    "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json",
                          "stream": "ext://sys.stderr"}},
    "root": {"level": os.environ.get("BEATRA_LOG_LEVEL", "INFO").upper(), "handlers": ["json"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
    },
}

# --- Prometheus multiprocess directory -----------------------------------------------------------

# Every worker writes its samples here and /metrics sums them. Set PROMETHEUS_MULTIPROC_DIR to
# the same directory for the Dramatiq workers so their figures are included too.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.abspath(
        os.path.join(os.environ.get("BEATRA_VAR_DIR", "./var"), "prometheus"))
_metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def _pid_of(path: str) -> int | None:
    stem = os.path.basename(path).rsplit(".", 1)[0]
    tail = stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def on_starting(server) -> None:
    """Master start: drop the files of processes that are gone (a previous run). Files of live
    processes sharing the directory (Dramatiq workers) are kept."""
    os.makedirs(_metrics_dir, exist_ok=True)
    for path in glob.glob(os.path.join(_metrics_dir, "*.db")):
        pid = _pid_of(path)
        if pid is None or not _alive(pid):
            os.remove(path)


def child_exit(server, worker) -> None:
    """prometheus_client's mark_process_dead, without importing it into the master: a dead
    worker's live gauges (streams active, circuits) stop counting; its counters stay."""
    for path in glob.glob(os.path.join(_metrics_dir, f"gauge_live*_{worker.pid}.db")):
        os.remove(path)
