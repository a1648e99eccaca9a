"""One access line and one set of HTTP metrics per request, written when the response is done.

A streamed response (SSE relay, file download) is finished only when its last byte is sent or
the client leaves, so its line and its duration are recorded from `response.call_on_close`,
not when the headers go out.

Hook for handlers: `beatra.accesslog.access_fields()` is a dict created for every request;
whatever a handler puts there is added to the access line. The chat relay sets `outcome` (e.g.
"completed", "client_disconnected", "upstream_error") and `credits` (the amount billed, a
string) while it streams; other keys are allowed but keep them few and small.

SSE responses (text/event-stream) are also what `beatra_streams_active` counts, from here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, g, request

from beatra import metrics
from beatra.logs import info_line
from beatra.request_id import current_request_id

access_log = logging.getLogger("beatra.access")


_ENVIRON_KEY = "beatra.access_fields"


def access_fields() -> dict[str, Any]:
    """The current request's extra access-log fields (mutable; see the module doc). Kept in the
    WSGI environ, which a stream_with_context generator shares with the request for certain
    (it may run under a fresh app context, hence a fresh `g`)."""
    return request.environ.setdefault(_ENVIRON_KEY, {})


_STARTED_KEY = "beatra.access_started"


def init_access_log(app: Flask) -> None:
    @app.before_request
    def _begin() -> None:
        request.environ[_STARTED_KEY] = time.perf_counter()

    @app.after_request
    def _record(resp: Response) -> Response:
        req = request._get_current_object()  # type: ignore[attr-defined]
        environ = req.environ
        caller = g.get("caller")
        rule = req.url_rule
        line: dict[str, Any] = {
            "method": req.method,
            "path": req.path,
            "route": rule.rule if rule is not None else "unmatched",
            "status": resp.status_code,
            "account_id": caller.account_id if caller else None,
            "request_id": current_request_id(),
        }
        started = environ.get(_STARTED_KEY) or time.perf_counter()
        # The same dict object: a streaming handler keeps filling it after this hook ran.
        extra = environ.setdefault(_ENVIRON_KEY, {})

        # Every SSE response counts as an active stream from its headers to its close, here in
        # one place rather than in each streaming handler.
        sse = resp.is_streamed and resp.mimetype == "text/event-stream"
        if sse:
            metrics.stream_started()

        def finish() -> None:
            if sse:
                metrics.stream_ended()
            seconds = time.perf_counter() - started
            metrics.record_request(line["route"], line["method"], line["status"], seconds)
            info_line(access_log, "request",
                      {**line, "duration_ms": round(seconds * 1000, 2), **extra})

        if resp.is_streamed:
            line["streamed"] = True
            resp.call_on_close(finish)
        else:
            finish()
        return resp
