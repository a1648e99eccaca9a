"""App-level Idempotency-Key handling for every view marked `idempotent` (beatra.api.docs).

before_request (after auth and rate limits): validate the key, fingerprint the request and
take the key — or answer from the stored response (replay), 422 `idempotency_key_reused`, or
409 `idempotency_conflict`. after_request: store the response, or forget the key when a retry
should redo the work (5xx, 401, 402, 409, 429). A streamed response (chat SSE) is teed: the
bytes are stored when the stream ends normally, and a stream cut short or ending in an
`event: error` forgets the key.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator

import orjson
from flask import Flask, Response, after_this_request, current_app, g, request

from beatra.config import current_settings
from beatra.errors import ApiError, invalid
from beatra.extensions import db
from beatra.idempotency import store

log = logging.getLogger(__name__)

KEY_HEADER = "Idempotency-Key"
_KEY_ENVIRON = "HTTP_IDEMPOTENCY_KEY"  # the same header, as the WSGI environ names it
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX = 255
# Outcomes a retry should redo rather than replay.
_NOT_STORED = frozenset({401, 402, 408, 409, 429})
# Response headers a replay repeats (besides the body and status).
_KEPT_HEADERS = ("Content-Type", "Cache-Control", "X-Accel-Buffering", "Location")
MAX_STORED_BYTES = 4 * 1024 * 1024  # larger responses are not stored (a retry runs again)
_STREAM_ERROR = b"\nevent: error\n"


def init_idempotency(app: Flask) -> None:
    app.before_request(_before)  # a request that takes a key also stores its answer (_store)
    app.teardown_request(_teardown)


def _valid_key(key: str) -> bool:
    return 1 <= len(key) <= KEY_MAX and all(32 <= ord(c) < 127 for c in key)


def _part_order(name: str | None) -> tuple[bool, str]:
    return name is None, name or ""  # Werkzeug names a part it cannot parse None


def fingerprint() -> str:
    """sha256 over method, path, query and the canonical body. JSON: sorted keys, so key order
    and whitespace do not matter. Multipart: the form fields plus each file's name and size
    (the file is spooled to disk by the parser; its bytes are not re-read). The body cap was
    set by the input guard before this reads anything."""
    h = hashlib.sha256()
    h.update(f"{request.method}\0{request.path}\0".encode())
    h.update(request.query_string + b"\0")
    if request.mimetype == "multipart/form-data":
        for name in sorted(request.form, key=_part_order):
            for value in request.form.getlist(name):
                h.update(orjson.dumps(["field", name, value]))
        for name in sorted(request.files, key=_part_order):
            for upload in request.files.getlist(name):
                stream = upload.stream
                stream.seek(0, 2)
                size = stream.tell()
                stream.seek(0)
                h.update(orjson.dumps(["file", name, upload.filename, size]))
        return h.hexdigest()
    data = request.get_data(cache=True)
    if data and request.is_json:
        try:
            data = orjson.dumps(orjson.loads(data), option=orjson.OPT_SORT_KEYS)
        except orjson.JSONDecodeError:
            data = b"raw\0" + data  # hashed as sent; the view answers 422
    h.update(data)
    return h.hexdigest()


def _before() -> Response | None:
    req = request._get_current_object()  # type: ignore[attr-defined]
    key = req.environ.get(_KEY_ENVIRON)  # most requests send none: nothing to do
    if key is None or req.method != "POST":
        return None
    view = current_app.view_functions.get(req.endpoint or "")
    caller = g.get("caller")
    if not getattr(view, "idempotent", False) or caller is None:
        return None
    if not _valid_key(key):
        raise invalid(f"{KEY_HEADER} must be 1-{KEY_MAX} printable ASCII characters.",
                      f"/{KEY_HEADER}")
    settings = current_settings()
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    fp = fingerprint()
    outcome = store.acquire(
        caller.account_id, f"POST {rule}", key, fp,
        ttl_seconds=settings.idempotency_ttl_seconds,
        lease_seconds=settings.idempotency_lease_seconds)
    if isinstance(outcome, store.Owned):
        g.idempotency = outcome
        after_this_request(_store)
        return None
    require_replayable(outcome, fp)
    resp = Response(outcome.response_body or b"", status=outcome.response_status)
    for name, value in (outcome.response_headers or {}).items():
        resp.headers[name] = value
    resp.headers[REPLAYED_HEADER] = "true"
    return resp


def _kept_headers(resp: Response) -> dict[str, str]:
    return {name: resp.headers[name] for name in _KEPT_HEADERS if name in resp.headers}


def _store(resp: Response) -> Response:
    """The answer of the request that took the key (see _before)."""
    owned: store.Owned | None = g.pop("idempotency", None)
    if owned is None:
        return resp
    if resp.status_code >= 500 or resp.status_code in _NOT_STORED:
        store.release(owned)
        return resp
    if resp.is_streamed:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        resp.response = _Tee(resp.response, owned, app, resp.status_code, _kept_headers(resp))
        return resp
    body = resp.get_data()
    if len(body) > MAX_STORED_BYTES:
        store.release(owned)
    else:
        store.complete(owned, resp.status_code, _kept_headers(resp), body)
    return resp


def _teardown(_exc: BaseException | None) -> None:
    owned: store.Owned | None = g.pop("idempotency", None)
    if owned is not None:  # the response never reached after_request
        try:
            store.release(owned)
        except Exception:
            log.exception("could not release an idempotency key; its lease will expire")


class _Tee:
    """Relays a streamed body unchanged and stores its bytes once it ends normally."""

    def __init__(self, inner: Iterable[str] | Iterable[bytes], owned: store.Owned, app: Flask,
                 status: int,
                 headers: dict[str, str]) -> None:
        self.inner = inner
        self.owned = owned
        self.app = app
        self.status = status
        self.headers = headers
        self.chunks: list[bytes] = []
        self.size = 0
        self.settled = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            data = chunk.encode() if isinstance(chunk, str) else chunk
            self.size += len(data)
            if self.size <= MAX_STORED_BYTES:
                self.chunks.append(data)
            yield data
        body = b"".join(self.chunks)
        ok = self.size <= MAX_STORED_BYTES and _STREAM_ERROR not in b"\n" + body
        self._settle(body if ok else None)

    def close(self) -> None:
        try:
            close = getattr(self.inner, "close", None)
            if close is not None:
                close()
        finally:
            self._settle(None)  # no-op after a normal end; a cut stream forgets the key

    def _settle(self, body: bytes | None) -> None:
        if self.settled:
            return
        self.settled = True
        try:
            with self.app.app_context():
                if body is None:
                    store.release(self.owned)
                else:
                    store.complete(self.owned, self.status, self.headers, body)
                db.session.remove()
        except Exception:
            log.exception("could not record a streamed idempotent response")


def require_replayable(outcome: store.Found, fp: str) -> None:
    """A key held by another request: 422 if its body differed, 409 while it is unfinished;
    otherwise its stored answer may be replayed."""
    if outcome.fingerprint != fp:
        raise ApiError(422, "idempotency_key_reused",
                       f"This {KEY_HEADER} was already used with a different request body.",
                       param=f"/{KEY_HEADER}")
    if outcome.status != "completed":
        raise ApiError(409, "idempotency_conflict",
                       f"A request with this {KEY_HEADER} is still in progress.",
                       retryable=True, headers={"Retry-After": "1"})
