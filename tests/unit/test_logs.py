"""beatra.logs.info_line: the access line's short path writes exactly what logging would."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from beatra.logs import JsonFormatter, info_line, log_context

LOGGER = logging.getLogger("beatra.test_access")
FIELDS = {"method": "POST", "request_id": "req_1", "status": 200, "odd": "\udc00"}


@contextlib.contextmanager
def json_root(*others: logging.Handler) -> Iterator[io.StringIO]:
    """The root logger as in a worker: one JSON stream handler (plus `others`), at INFO. Set
    inside the test: pytest adds its own handlers to the root around each test's call."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler, *others]
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def _lines(stream: io.StringIO) -> list[dict]:
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    for line in lines:
        assert line.pop("ts").endswith("Z")
    return lines


def test_the_short_path_writes_the_line_logging_would(monkeypatch):
    with json_root() as stream, log_context(task_id="task_1"):
        LOGGER.info("request", extra={"fields": FIELDS})
        with monkeypatch.context() as patched:  # the short path makes no LogRecord
            patched.setattr(logging.Logger, "makeRecord", pytest.fail)
            info_line(LOGGER, "request", FIELDS)
    standard, short = _lines(stream)
    assert short == standard == {"level": "info", "logger": "beatra.test_access",
                                 "msg": "request", "task_id": "task_1", "request_id": "req_1",
                                 "method": "POST", "status": 200, "odd": "\ufffd"}


def test_with_another_handler_the_record_goes_through_logging():
    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    keep = Keep()
    with json_root(keep) as stream:
        info_line(LOGGER, "request", FIELDS)
    assert [r.fields for r in keep.records] == [FIELDS]  # type: ignore[attr-defined]
    assert len(_lines(stream)) == 1  # and the JSON handler still wrote its line


def test_nothing_below_the_level():
    with json_root() as stream:
        LOGGER.setLevel(logging.WARNING)
        try:
            info_line(LOGGER, "request", FIELDS)
        finally:
            LOGGER.setLevel(logging.NOTSET)
    assert stream.getvalue() == ""
