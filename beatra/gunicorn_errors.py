"""The error envelope for what gunicorn answers before the app sees a request.

gunicorn refuses an over-long request line (414, `limit_request_line` 4094 bytes), too many or
too large header fields (431, `limit_request_fields` 100, `limit_request_field_size` 8190 bytes)
and malformed HTTP (400) itself, with an HTML page. `install()` (called from gunicorn.conf.py's
`post_worker_init`, so only inside a worker, after gevent has patched) swaps gunicorn's writer
for one that sends the same status as our JSON envelope with a fresh X-Request-Id.
"""

from __future__ import annotations

import secrets
import socket
from typing import Any

import orjson

_CODES = {400: "invalid_request", 403: "forbidden", 414: "uri_too_long",
          417: "invalid_request", 431: "headers_too_large", 501: "not_implemented"}


def envelope(status: int, reason: str, message: str) -> tuple[str, bytes]:
    request_id = f"req_{secrets.token_hex(12)}"
    code = _CODES.get(status, "invalid_request" if status < 500 else "internal_error")
    text = f"{reason}: {message}" if message else reason
    body = orjson.dumps({"error": {"code": code, "message": text, "retryable": status >= 500,
                                   "request_id": request_id, "param": None, "details": None}})
    return request_id, body


def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Same signature as gunicorn.util.write_error."""
    from gunicorn.util import write_nonblock

    request_id, body = envelope(status_int, reason, mesg)
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nX-Request-Id: {request_id}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    write_nonblock(sock, head.encode("latin-1") + body)


def install(_worker: Any = None) -> None:
    from gunicorn import util

    util.write_error = write_error  # gunicorn's handle_error looks it up at call time
