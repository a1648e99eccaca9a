"""Helpers shared by every simulated provider: auth, JSON bodies, fault shaping."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from flask import Response, request

from .directives import Directives

# Reason phrases for OpenAI-style errors produced by the ``fail=N`` directive.
_STATUS_TEXT = {
    400: "Sandbox forced a bad request.",
    401: "Incorrect API key provided (sandbox).",
    403: "Country, region, or territory not supported (sandbox).",
    404: "The model does not exist or you do not have access to it (sandbox).",
    408: "Request timed out (sandbox).",
    409: "Conflict (sandbox).",
    422: "Unprocessable entity (sandbox).",
    429: "Rate limit reached for requests (sandbox).",
    500: "The server had an error while processing your request (sandbox).",
    502: "Bad gateway (sandbox).",
    503: "The server is overloaded or not ready yet (sandbox).",
    504: "Gateway timeout (sandbox).",
}


def status_text(status: int) -> str:
    return _STATUS_TEXT.get(status, f"Sandbox forced HTTP {status}.")


def new_id(prefix: str = "", length: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:length]


def has_bearer() -> bool:
    """Real upstreams accept any syntactically present key here; only absence fails."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def json_body() -> dict[str, Any] | None:
    body = request.get_json(silent=True, force=True)
    return body if isinstance(body, dict) else None


def json_response(
    payload: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    directives: Directives | None = None,
) -> Response:
    """Serialise a JSON reply, applying the truncate/malformed directives to the body."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    if directives is not None and directives.malformed:
        body = "<html><body>sandbox: upstream returned garbage, not JSON</body></html>"
        status = 200
    elif directives is not None and directives.truncate:
        body = body[: max(1, len(body) // 2)]
    return Response(body, status=status, headers=headers, mimetype="application/json")


def openai_error(
    status: int,
    message: str,
    err_type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    payload = {"error": {"message": message, "type": err_type, "param": param, "code": code}}
    return json_response(payload, status, headers)


def openai_forced_error(d: Directives) -> Response | None:
    """The ``fail=`` directive rendered as an OpenAI-compatible error, or None."""
    if d.insufficient_quota:
        return openai_error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        )
    if d.fail is None:
        return None
    status = d.fail
    if status == 429:
        # Transient rate limits carry retry hints, quota exhaustion (above) never does.
        return openai_error(
            429, status_text(429), "requests", "rate_limit_exceeded",
            headers={"retry-after": "1", "retry-after-ms": "1000"},
        )
    if status == 401:
        return openai_error(401, status_text(401), "invalid_request_error", "invalid_api_key")
    err_type = "server_error" if status >= 500 else "invalid_request_error"
    return openai_error(status, status_text(status), err_type, None)


def openai_auth_error() -> Response:
    return openai_error(
        401,
        "You didn't provide an API key. You need to provide your API key in an "
        "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        "invalid_request_error",
    )


def sleep_for(d: Directives) -> None:
    # Under the gevent server time.sleep is monkey-patched, so this only parks a greenlet.
    if d.delay > 0:
        time.sleep(d.delay)
