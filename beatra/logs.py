"""JSON log lines carrying the request id (and, in task workers, the task id).

One JSON object per line from every process: the web app (this formatter on the root logger),
gunicorn (gunicorn.conf.py's `logconfig_dict` in the master; `configure_logging` puts this
formatter on gunicorn's handlers in each worker, adding the request id) and Dramatiq (run with
`--skip-logging`, so its plain basicConfig handler never exists and records are not printed
twice; the worker process's root gets this formatter).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

from beatra import jsonsafe
from beatra.request_id import current_request_id

# Fields every line written in this context carries (a task worker's task id and the id of the
# request that submitted the task). A ContextVar: each thread / greenlet has its own.
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "beatra_log_context", default=None)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    token = _context.set({**(_context.get() or {}),
                          **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def _timestamp(created: float) -> str:
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
            + f".{int((created - int(created)) * 1000):03d}Z")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = _context.get()
        if context:
            entry.update(context)
        rid = current_request_id()
        if rid:
            entry["request_id"] = rid
        extra = getattr(record, "fields", None)
        if extra:
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return jsonsafe.dumps(entry, default=str).decode()


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    _adopt_json_handlers(root)
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())


def _adopt_json_handlers(root: logging.Logger) -> None:
    """Inside a gunicorn worker: the JSON handler gunicorn.conf.py configured (its formatter is
    marked `beatra_json`) becomes ours, instead of a second handler printing every line twice;
    gunicorn's own lines written during a request then carry its request id too."""
    for logger in (root, logging.getLogger("gunicorn.error"), logging.getLogger("gunicorn.access")):
        for handler in logger.handlers:
            if getattr(handler.formatter, "beatra_json", False):
                handler.setFormatter(JsonFormatter())


def info_line(logger: logging.Logger, msg: str, fields: dict[str, Any]) -> None:
    """`logger.info(msg, extra={"fields": fields})`, written straight to the stream when that
    record would reach only our JSON stream handler: the same line, without a LogRecord and the
    logging module's per-record work (measured under load in a gunicorn worker: ~50 µs of the
    access line's cost, about 6 % of a chat call). Any other set-up (another handler, a filter,
    pytest's capture) gets the record through logging as usual."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _only_json_stream(logger)
    if handler is None:
        logger.info(msg, extra={"fields": fields})
        return
    entry: dict[str, Any] = {"ts": _timestamp(time.time()), "level": "info",
                             "logger": logger.name, "msg": msg}
    context = _context.get()
    if context:
        entry.update(context)
    if "request_id" in fields:  # where JsonFormatter puts it
        entry["request_id"] = fields["request_id"]
    entry.update(fields)
    line = jsonsafe.dumps(entry, default=str).decode() + handler.terminator
    with handler.lock or contextlib.nullcontext():
        handler.stream.write(line)
        handler.stream.flush()


def _only_json_stream(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The one handler a record of `logger` would reach, if it is our plain JSON stream one."""
    found: logging.StreamHandler[Any] | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if (found is not None or type(handler) is not logging.StreamHandler
                    or not isinstance(handler.formatter, JsonFormatter) or handler.filters
                    or handler.level > logging.INFO):
                return None
            found = handler
        current = current.parent if current.propagate else None
    return found
