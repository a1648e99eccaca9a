"""One guard in front of every route: what a request may be before any view or idempotency
hook reads it. Two hooks: size and headers before auth (cheap); the body checks after auth and
rate limits (so an unauthenticated caller cannot make us parse a body at all).

- Body size: one rule, per endpoint, from settings. A view may name a larger cap with
  `body_limit` (uploads); everything else gets `max_json_body_bytes`. Werkzeug is told the same
  cap (`request.max_content_length`), so a body without Content-Length stops there too (413).
- Header values and multipart fields: no unpaired UTF-16 surrogates.
- JSON bodies: parsed once with orjson, which refuses unpaired surrogates and invalid UTF-8;
  nesting at most MAX_JSON_DEPTH; every number within ±MAX_JSON_INTEGER (2^63 - 1: an
  integer fits int64 columns and every JSON encoder; floats are held to it too).
  Python's json (used later by webargs and Flask) only ever sees a body that passed these
  checks, so it cannot recurse or overflow.
- A view that takes a JSON body refuses another Content-Type with 415 naming the problem,
  rather than reporting every required field as missing.

Every refusal is the error envelope, raised before anything is reserved or stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson
from flask import Flask, current_app, request

from beatra.config import Settings
from beatra.errors import ApiError, invalid
from beatra.jsonsafe import has_surrogate

MAX_JSON_DEPTH = 64
# Any JSON number must fit a signed 64-bit integer; fields that feed billing (token counts)
# have much tighter ranges in their schemas.
MAX_JSON_INTEGER = 2**63 - 1
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

BodyLimit = Callable[[Settings], int]


def body_limit(limit: BodyLimit) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a view its own body cap (a function of the settings), read by the guard."""

    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        view.body_limit = limit  # type: ignore[attr-defined]
        return view

    return mark


def init_input_guard(app: Flask) -> None:
    """Before auth: body size and header text, which cost nothing to check."""
    app.before_request(_guard_transport)


def init_body_guard(app: Flask) -> None:
    """After auth and rate limits (so a stranger cannot make us parse 16 MB), before anything
    else reads the body (idempotency fingerprints, views)."""
    app.before_request(_guard_body)


def _guard_transport() -> None:
    req = request._get_current_object()  # type: ignore[attr-defined]
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings: Settings = app.extensions["beatra.settings"]
    _check_headers(req)
    limit_of = _views(app)[req.endpoint or ""].body_limit
    limit = limit_of(settings) if limit_of is not None else settings.max_json_body_bytes
    req.max_content_length = limit
    length = req.content_length
    if length is not None and length > limit:
        raise ApiError(413, "payload_too_large",
                       f"Request body is {length} bytes; the limit here is {limit} bytes.")


def _guard_body() -> None:
    req = request._get_current_object()  # type: ignore[attr-defined]
    if req.method not in _BODY_METHODS:
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    kind = _views(app)[req.endpoint or ""].body_kind
    mimetype = req.mimetype
    if mimetype == "multipart/form-data":
        if kind == "multipart":
            _check_form()
        return
    if kind != "json" and not req.is_json:
        return
    data = req.get_data(cache=True)  # stops at max_content_length (413)
    if not data.strip():
        return  # the view's schema says which fields are required
    if not req.is_json:
        raise ApiError(415, "unsupported_media_type",
                       f"Send the body as JSON with Content-Type: application/json "
                       f"(got {mimetype or 'no Content-Type'}).")
    check_json(data)


@dataclass(frozen=True)
class _ViewRules:
    body_limit: BodyLimit | None = None
    body_kind: str | None = None  # "json" | "multipart" | None


_NO_VIEW = _ViewRules()


class _ViewTable(dict[str, _ViewRules]):
    """Each endpoint's body rules, read off its view once (the views never change)."""

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self._app = app

    def __missing__(self, endpoint: str) -> _ViewRules:
        view = self._app.view_functions.get(endpoint)
        rules = _NO_VIEW if view is None else _ViewRules(getattr(view, "body_limit", None),
                                                          _body_kind(view))
        self[endpoint] = rules
        return rules


def _views(app: Flask) -> _ViewTable:
    table: _ViewTable | None = app.extensions.get(_VIEWS_KEY)
    if table is None:
        table = app.extensions[_VIEWS_KEY] = _ViewTable(app)
    return table


_VIEWS_KEY = "beatra.input_guard.views"


def _check_headers(req: Any) -> None:
    for name, value in req.headers.items():
        if not value.isascii() and has_surrogate(value):  # ASCII has no surrogates
            raise invalid(f"Header {name} holds an unpaired UTF-16 surrogate.", f"/{name}")


def _check_form() -> None:
    # A part may come without a name (None): it is ignored by the schema, and so here.
    for name, value in request.form.items(multi=True):
        if has_surrogate(name or "") or has_surrogate(value or ""):
            raise invalid("Form field holds an unpaired UTF-16 surrogate.",
                          f"/{_escape(name or '')}")
    for name, upload in request.files.items(multi=True):
        if has_surrogate(name or "") or has_surrogate(upload.filename or ""):
            raise invalid("File name holds an unpaired UTF-16 surrogate.",
                          f"/{_escape(name or '')}")


def _body_kind(view: Any) -> str | None:
    """"json" or "multipart" when the view declares such a body (flask-smorest's apidoc)."""
    params = (getattr(view, "_apidoc", None) or {}).get("arguments", {}).get("parameters", [])
    for param in params:
        where = param.get("in")
        if where == "json":
            return "json"
        if where in ("multipart", "form", "files"):
            return "multipart"
    return None


def check_json(data: bytes) -> Any:
    """Parse a JSON body under the rules above; returns the value or raises a 422 ApiError."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise invalid(_decode_message(exc)) from None
    _walk(value)
    return value


def _decode_message(exc: orjson.JSONDecodeError) -> str:
    reason = exc.msg
    if "surrogate" in reason:
        return (f"Request body holds an unpaired UTF-16 surrogate escape or invalid UTF-8 "
                f"(line {exc.lineno}, column {exc.colno}); send valid Unicode text.")
    if "depth" in reason:
        return f"Request body is nested too deeply; at most {MAX_JSON_DEPTH} levels."
    if "infinity" in reason:
        return (f"Request body holds a number too large (line {exc.lineno}, column "
                f"{exc.colno}); integers must be within ±{MAX_JSON_INTEGER}.")
    return f"Request body is not valid JSON: {reason} (line {exc.lineno}, column {exc.colno})."


def _walk(root: Any) -> None:
    """Depth and number range, iteratively (no recursion on hostile input). The values are
    orjson's own types (dict, list, str, int, float, bool, None). Paths are only worked out
    (by _locate) when something is wrong: building one per value was most of this check's
    cost."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        kind = type(value)
        if kind is dict:
            children = value.values()
        elif kind is list:
            children = value
        else:
            if (kind is int or kind is float) and not (
                    -MAX_JSON_INTEGER <= value <= MAX_JSON_INTEGER):
                _locate(root)
            continue
        if depth > MAX_JSON_DEPTH:
            _locate(root)
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif (kind is int or kind is float) and not (
                    -MAX_JSON_INTEGER <= child <= MAX_JSON_INTEGER):
                _locate(root)


def _locate(root: Any) -> NoReturn:
    """Raise the 422 for the first value _walk refuses, with its JSON Pointer."""
    stack: list[tuple[Any, int, tuple[str, ...]]] = [(root, 1, ())]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise invalid(f"Request body is nested too deeply; at most {MAX_JSON_DEPTH} "
                              f"levels.", _pointer(path))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((v, depth + 1, (*path, str(k))) for k, v in items)
        elif (isinstance(value, int | float) and not isinstance(value, bool)
              and not -MAX_JSON_INTEGER <= value <= MAX_JSON_INTEGER):
            # Floats too: orjson reads an integer past 2^64 as a float, while Python's json
            # (webargs) would hand the view an exact int no int64 column or encoder can hold.
            raise invalid(f"Number out of range; at most {MAX_JSON_INTEGER} in magnitude.",
                          _pointer(path))
    raise AssertionError("_walk refused a body that _locate accepts")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(path: tuple[str, ...]) -> str | None:
    return "".join(f"/{_escape(p)}" for p in path) or None
