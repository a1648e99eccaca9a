"""One socket write for a response's head and its first body bytes, in gunicorn's workers.

gunicorn sends a response's head and each body chunk with separate `sendall` calls, so every
JSON answer costs two syscalls where one does (each also wakes the reader, which on loopback
and in VMs is most of a small response's cost), and the head alone is the small segment that
Nagle's algorithm holds back. `install()` (from gunicorn.conf.py's `post_worker_init`, inside
a worker only) sends the head together with the first non-empty body write. Every other case
(no body, HEAD/204/304, sendfile, a body longer than its Content-Length) is left to gunicorn.
"""

from __future__ import annotations

from typing import Any


def install(_worker: Any = None) -> None:
    from gunicorn import util
    from gunicorn.http import wsgi

    gunicorn_write = wsgi.Response.write

    def write(self: Any, arg: bytes) -> None:
        if (self.headers_sent or not arg or not isinstance(arg, bytes) or self._omits_body
                or (self.response_length is not None and len(arg) > self.response_length)):
            gunicorn_write(self, arg)
            return
        lines = self.default_headers()
        lines.extend(f"{k}: {v}\r\n" for k, v in self.headers)
        head = util.to_bytestring("".join(lines) + "\r\n", "latin-1")
        self.headers_sent = True
        self.sent += len(arg)
        if self.chunked:
            arg = f"{len(arg):X}\r\n".encode() + arg + b"\r\n"
        self.sock.sendall(head + arg)

    wsgi.Response.write = write
