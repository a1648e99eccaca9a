"""OpenAPI decorations shared by every operation (headers, error responses)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apispec import BasePlugin
from flask_smorest import Blueprint
from marshmallow import Schema, fields

_AUTH = {"name": "Authorization", "in": "header", "required": True,
         "schema": {"type": "string"}, "description": "Bearer API key."}
_REQUEST_ID = {"name": "X-Request-Id", "in": "header", "required": False,
               "schema": {"type": "string"},
               "description": "Optional client request id echoed in the response."}
_IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
                "schema": {"type": "string"},
                "description": "Optional idempotency key for safe retries of mutating requests."}
REQUEST_ID_HEADER = {"X-Request-Id": {"description": "Request id for support correlation.",
                                      "schema": {"type": "string"}}}


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "Stable public error code"})
    message = fields.String(required=True, metadata={"description": "Human-readable explanation"})
    retryable = fields.Boolean(
        required=True,
        metadata={"description": "If true, retrying the exact same request may succeed"},
    )
    details = fields.Dict(allow_none=True, metadata={"description": "Code-specific info"})
    request_id = fields.String(required=True, metadata={"description": "Echo of X-Request-Id"})
    param = fields.String(allow_none=True, metadata={"description": "JSON Pointer to the field"})


class ErrorResponseSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


_EXTRA_PARAMETERS = "x-beatra-parameters"


class HeaderParametersPlugin(BasePlugin):
    """Appends the header parameters `operation()` records to each operation's list.

    Setting `parameters` through `blp.doc` would replace the list flask-smorest builds from
    path rules and query schemas; this merges instead."""

    def operation_helper(self, path: str | None = None,
                         operations: dict[str, Any] | None = None, **_: Any) -> None:
        for op in (operations or {}).values():
            extra = op.pop(_EXTRA_PARAMETERS, None) if isinstance(op, dict) else None
            if extra:
                op["parameters"] = [*op.get("parameters", []), *extra]


def operation(
    blp: Blueprint,
    operation_id: str,
    *,
    auth: bool = True,
    idempotent: bool = False,
    errors: dict[int, str] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """operationId, the standard header parameters and documented error responses."""
    params = [_AUTH] if auth else []
    params.append(_REQUEST_ID)
    if idempotent:
        params.append(_IDEMPOTENCY)
    responses = {422: "Validation error"}
    if auth:
        responses[401] = "Missing, invalid or revoked API key"

    if idempotent:  # beatra.idempotency replays these; retries may collide (409)
        responses.setdefault(409, "A request with the same Idempotency-Key is still in "
                                  "progress (retryable)")
    if auth:  # beatra.ratelimit: requests per minute and concurrent streams per key
        responses.setdefault(429, "Rate limit exceeded (see Retry-After, X-RateLimit-*)")
    responses.update(errors or {})

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        # Marks the view for the app-level Idempotency-Key handling (beatra.idempotency).
        func.idempotent = idempotent  # type: ignore[attr-defined]
        return documents(
            *(blp.alt_response(status, schema=ErrorResponseSchema, description=description,
                               headers=REQUEST_ID_HEADER)
              for status, description in sorted(responses.items())),
            blp.doc(operationId=operation_id, **{_EXTRA_PARAMETERS: params}),
        )(func)

    return decorate


View = Callable[..., Any]


def documents(*decorators: Callable[[Any], Any]) -> Callable[[View], View]:
    """flask-smorest's documentation-only decorators (`blp.doc`, `blp.alt_response`), keeping
    what they write into the view's `_apidoc` but not their wrapper: each wraps the view in a
    function that only calls it, through `current_app`, on every request (an error-heavy
    operation had eight such layers)."""

    def apply(func: View) -> View:
        documented = func
        for decorator in decorators:
            documented = decorator(documented)
        func._apidoc = documented._apidoc  # type: ignore[attr-defined]
        return func

    return apply
