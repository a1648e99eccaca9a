"""CORS for browser clients: `BEATRA_CORS_ORIGINS` (comma-separated origins, `*` for any;
unset = off, no CORS header is ever sent).

A preflight (OPTIONS with Origin and Access-Control-Request-Method) from an allowed origin is
answered here, before authentication, since browsers send it without the Authorization header.
A preflight from any other origin gets no CORS headers and goes on like any request (an
authenticated route answers 401), so the browser refuses the real request. Keys are bearer
tokens, not cookies: credentials mode is never allowed.
"""

from __future__ import annotations

from flask import Flask, Response, request

from beatra.idempotency.hooks import REPLAYED_HEADER
from beatra.request_id import HEADER as REQUEST_ID_HEADER

ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", REQUEST_ID_HEADER)
EXPOSED_HEADERS = (REQUEST_ID_HEADER, "X-RateLimit-Limit", "X-RateLimit-Remaining",
                   "X-RateLimit-Reset", "Retry-After", REPLAYED_HEADER)
ALLOWED_METHODS = ("GET", "POST", "PUT", "DELETE")
MAX_AGE_SECONDS = 600


class Cors:
    def __init__(self, origins: tuple[str, ...]) -> None:
        self.any = "*" in origins
        self.origins = frozenset(origins)

    def allowed(self, origin: str | None) -> bool:
        return bool(origin) and (self.any or origin in self.origins)

    def preflight(self) -> Response | None:
        origin = request.headers.get("Origin")
        if (request.method != "OPTIONS" or not self.allowed(origin)
                or "Access-Control-Request-Method" not in request.headers):
            return None
        resp = Response(status=204)
        resp.headers["Access-Control-Allow-Methods"] = ", ".join(ALLOWED_METHODS)
        resp.headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)
        resp.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
        return resp  # the origin headers are added by `decorate`, like on every response

    def decorate(self, resp: Response) -> Response:
        origin = request.headers.get("Origin")
        resp.vary.add("Origin")  # caches must not serve one origin's answer to another
        if self.allowed(origin):
            resp.headers["Access-Control-Allow-Origin"] = "*" if self.any else str(origin)
            resp.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
        return resp


def init_cors(app: Flask, origins: tuple[str, ...]) -> None:
    """Register before authentication (preflights carry no key). No-op without origins."""
    if not origins:
        return
    cors = Cors(origins)
    app.before_request(cors.preflight)
    app.after_request(cors.decorate)
