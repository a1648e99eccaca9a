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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
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
