"""The public error contract: one envelope from every layer.

Every non-2xx response is `{"error": {code, message, retryable, request_id, param, details}}`.
Codes are stable (extend, never rename).
"""

from __future__ import annotations

import logging
from typing import Any, cast

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from beatra import jsonsafe
from beatra.request_id import current_request_id

log = logging.getLogger(__name__)

# HTTP status → default public code for errors raised by Flask/Werkzeug themselves.
_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    402: "insufficient_balance",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "idempotency_conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    502: "upstream_error",
    503: "model_unavailable",
}


class ApiError(Exception):
    """An error with a public code; raise it anywhere below a view."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        param: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.param = param
        self.details = details
        self.headers = headers or {}


def invalid(message: str, param: str | None = None, **details: Any) -> ApiError:
    return ApiError(422, "invalid_request", message, param=param, details=details or None)


def not_found(message: str = "Resource not found.") -> ApiError:
    return ApiError(404, "not_found", message)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


def error_body(
    code: str,
    message: str,
    *,
    retryable: bool = False,
    param: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "retryable": retryable,
            "request_id": current_request_id(),
            "param": param,
            "details": details,
        }
    }


def error_response(err: ApiError) -> Response:
    body = error_body(
        err.code, err.message, retryable=err.retryable, param=err.param, details=err.details
    )
    resp = Response(jsonsafe.dumps(body), status=err.status, mimetype="application/json")
    for key, value in err.headers.items():
        resp.headers[key] = value
    return resp


def _pointer_from_messages(messages: Any, prefix: str = "") -> tuple[str, str]:
    """First (JSON Pointer, message) out of a marshmallow/webargs error dict."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                return _pointer_from_messages(value, prefix)
            return _pointer_from_messages(value, f"{prefix}/{_escape(str(key))}")
    if isinstance(messages, list) and messages:
        return _pointer_from_messages(messages[0], prefix)
    return prefix or "", str(messages)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def validation_error(messages: Any) -> ApiError:
    """Turn webargs' `{location: {field: [msg]}}` into our 422 with a JSON Pointer."""
    location = None
    if isinstance(messages, dict) and len(messages) == 1:
        location, messages = next(iter(messages.items()))
    pointer, message = _pointer_from_messages(messages)
    if location in ("query", "headers", "files", "form", "path") and pointer:
        field = pointer.lstrip("/")
        text = f"Invalid {location} parameter '{field}': {message}"
    else:
        text = f"{pointer or 'body'}: {message}" if pointer else message
    return ApiError(422, "invalid_request", text, param=pointer or None)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Response:
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Response:
        status = err.code or 500
        data = getattr(err, "data", None) or {}
        if status == 422 and "messages" in data:
            return error_response(validation_error(data["messages"]))
        if status == 400:
            # Malformed JSON and similar: the request cannot be processed as sent.
            message = "Request body is not valid JSON." if "JSON" in (err.description or "") else (
                err.description or "Bad request."
            )
            return error_response(ApiError(422, "invalid_request", message))
        code = _STATUS_CODES.get(status, "invalid_request" if status < 500 else "internal_error")
        message = {
            404: "No such route.",
            405: "Method not allowed on this route.",
            413: "Request body too large.",
        }.get(status, err.description or err.name)
        api_err = ApiError(status, code, message, retryable=status in (429, 502, 503))
        resp = error_response(api_err)
        for key, value in err.get_headers():
            if key.lower() != "content-type":  # keep e.g. Allow on 405
                resp.headers[key] = value
        return resp

    register_outage_handlers(app)

    @app.errorhandler(Exception)
    def _unhandled(err: Exception) -> Response:
        return _internal(err)


# Seconds a client should wait before retrying after a dependency outage: a database restart or
# failover takes a few seconds; the pool recovers on the first successful connect.
OUTAGE_RETRY_AFTER = "2"


def outage_exceptions() -> tuple[type[BaseException], ...]:
    """Exceptions that mean a backing store (database, Redis) is unreachable or saturated,
    not that the request is wrong or the code is broken."""
    import dramatiq.errors
    import redis.exceptions
    from sqlalchemy import exc as sa_exc

    return (
        sa_exc.OperationalError,  # connection refused / dropped, "too many clients", db locked
        sa_exc.DisconnectionError,
        sa_exc.TimeoutError,  # QueuePool limit reached and the pool wait timed out
        # A session used again after a caught disconnect: an outage only when the chain of
        # exceptions shows one (checked in _is_outage).
        sa_exc.PendingRollbackError,
        redis.exceptions.ConnectionError,  # includes redis' TimeoutError subclasses of it
        redis.exceptions.TimeoutError,
        dramatiq.errors.BrokerConnectionError,  # the broker could not enqueue
    )


def service_unavailable(what: str) -> ApiError:
    return ApiError(503, "service_unavailable",
                    f"A backing service ({what}) is unavailable; retry shortly.",
                    retryable=True, headers={"Retry-After": OUTAGE_RETRY_AFTER})


def _outage_name(err: BaseException) -> str:
    module = type(err).__module__
    if module.startswith("redis") or module.startswith("dramatiq"):
        return "queue/cache"
    return "database"


def _is_outage(err: BaseException) -> bool:
    """SQLite reports schema mistakes ("no such table") as OperationalError too: those are bugs
    (500), not outages. A PendingRollbackError is an outage only if it follows one."""
    from sqlalchemy import exc as sa_exc

    if isinstance(err, sa_exc.PendingRollbackError):
        seen: set[int] = set()
        cause = err.__cause__ or err.__context__
        while cause is not None and id(cause) not in seen:
            seen.add(id(cause))
            if isinstance(cause, outage_exceptions()) and not isinstance(
                    cause, sa_exc.PendingRollbackError):
                return _is_outage(cause)
            cause = cause.__cause__ or cause.__context__
        return False
    text = str(getattr(err, "orig", err)).lower()
    return not any(s in text for s in ("no such table", "no such column", "syntax error"))


def _internal(err: BaseException) -> Response:
    log.error("unhandled error", exc_info=err)
    return error_response(
        ApiError(500, "internal_error", "Internal error; the request id identifies it.",
                 retryable=True)
    )


def register_outage_handlers(app: Flask) -> None:
    """Database or Redis unreachable → 503 `service_unavailable` (retryable), never 500.

    The session is rolled back so this request leaves no half-open transaction; SQLAlchemy has
    already invalidated the broken connection, so the next checkout connects afresh and the
    process recovers by itself when the store returns."""
    from beatra.extensions import db

    def _outage(err: Exception) -> Response:
        if not _is_outage(err):
            return _internal(err)
        try:
            db.session.rollback()
        except Exception:
            # Rolling back over a dead connection can fail too; the teardown discards it.
            log.debug("rollback after outage failed", exc_info=True)
        log.warning("dependency outage", extra={"fields": {
            "dependency": _outage_name(err), "error": f"{type(err).__name__}: {err}"[:300]}})
        return error_response(service_unavailable(_outage_name(err)))

    for exc_type in outage_exceptions():
        app.register_error_handler(cast("type[Exception]", exc_type), _outage)

    # Flask-SQLAlchemy ends every app context with session.remove(). Over a connection that
    # died mid-request its ROLLBACK raises from teardown, past every error handler, and
    # gunicorn answers its own plain-text 500. The connection is already invalidated: drop
    # the session and let the response stand.
    app.teardown_appcontext_funcs[:] = [
        f for f in app.teardown_appcontext_funcs if f != db._teardown_session]

    @app.teardown_appcontext
    def _remove_session(_exc: BaseException | None) -> None:
        try:
            db.session.remove()
        except outage_exceptions() as err:
            db.session.registry.clear()  # never reuse the broken session for this scope key
            log.warning("session teardown over a lost connection", extra={"fields": {
                "error": f"{type(err).__name__}: {err}"[:300]}})
