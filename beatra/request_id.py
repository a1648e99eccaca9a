"""X-Request-Id: the caller's when sane, else generated; one per request."""

from __future__ import annotations

import os

from flask import g, has_request_context, request

HEADER = "X-Request-Id"
_MAX_LEN = 128


def _sane(value: str) -> bool:
    return 0 < len(value) <= _MAX_LEN and value.isprintable() and value.isascii()


def current_request_id() -> str:
    if not has_request_context():
        return ""
    rid = g.get("request_id")
    if rid is None:
        supplied = request.headers.get(HEADER, "")
        rid = supplied if _sane(supplied) else "req_" + os.urandom(12).hex()
        g.request_id = rid
    return rid
