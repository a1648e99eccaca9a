"""The per-request check (after auth) and the X-RateLimit-* headers on every authenticated
response. 429 `rate_limited` carries Retry-After. A request asking for a stream (`"stream":
true` in a JSON body) also takes a concurrent-stream slot, released when the response closes.
If Redis is unreachable the request is let through (limits protect capacity; they must not
take the API down) and a warning is logged.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

import orjson
from flask import Flask, Response, after_this_request, current_app, g, request

from beatra.catalog.registry import current_catalog
from beatra.config import current_settings, settings_of
from beatra.errors import ApiError
from beatra.ratelimit.backends import Hit, MemoryLimiter, RedisLimiter

log = logging.getLogger(__name__)

EXTENSION_KEY = "beatra.ratelimit"
_WARN_EVERY_SECONDS = 30.0
_last_warning = 0.0


def init_rate_limits(app: Flask) -> None:
    settings = settings_of(app)
    app.extensions[EXTENSION_KEY] = (
        RedisLimiter(settings.redis_url) if settings.redis_url else MemoryLimiter())
    app.before_request(_before)  # a limited request also gets its headers (_after)
    app.teardown_request(_teardown)


def limits_for(caller: Any) -> tuple[int, int]:
    """(requests per minute, concurrent streams) for this key; 0 = unlimited."""
    defaults = current_catalog().rate_limits
    rpm = caller.rpm_limit if caller.rpm_limit is not None else defaults.requests_per_minute
    streams = (caller.stream_limit if caller.stream_limit is not None
               else defaults.concurrent_streams)
    return rpm, streams


def _wants_stream() -> bool:
    if request.method != "POST" or not request.is_json:
        return False
    data = request.get_data(cache=True)
    if b'"stream"' not in data:
        return False
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(body, dict) and body.get("stream") is True


def _headers(rpm: int, hit: Hit) -> dict[str, str]:
    if rpm <= 0:
        return {}
    return {"X-RateLimit-Limit": str(rpm),
            "X-RateLimit-Remaining": str(max(0, rpm - hit.count)),
            "X-RateLimit-Reset": str(hit.reset_seconds)}


def _before() -> None:
    caller = g.get("caller")
    if caller is None:
        return
    rpm, streams = limits_for(caller)
    if rpm <= 0 and streams <= 0:
        return
    slot = secrets.token_hex(8) if streams > 0 and _wants_stream() else None
    limiter = current_app.extensions[EXTENSION_KEY]
    settings = current_settings()
    try:
        hit = limiter.hit(caller.key_id, rpm, streams, slot, settings.stream_slot_ttl_seconds)
    except Exception as exc:  # Redis down: fail open
        _warn(exc)
        return
    headers = _headers(rpm, hit)
    if rpm > 0 and hit.count > rpm:
        raise ApiError(429, "rate_limited",
                       f"Rate limit of {rpm} requests per minute exceeded for this API key.",
                       retryable=True,
                       headers={**headers, "Retry-After": str(hit.reset_seconds)})
    if slot is not None:
        if not hit.stream_ok:
            raise ApiError(429, "rate_limited",
                           f"This API key already has {streams} concurrent streams open.",
                           retryable=True, headers={**headers, "Retry-After": "1"})
        g.stream_slot = (limiter, caller.key_id, slot)
    after_this_request(lambda resp: _after(resp, headers))


def _warn(exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= _WARN_EVERY_SECONDS:
        _last_warning = now
        log.warning("rate limiter unavailable; requests pass unlimited",
                    extra={"fields": {"error": f"{exc.__class__.__name__}: {exc}"}})


def _release(limiter: Any, key_id: str, slot: str) -> None:
    try:
        limiter.release(key_id, slot)
    except Exception as exc:  # the slot expires on its own (stream_slot_ttl_seconds)
        _warn(exc)


def _after(resp: Response, headers: dict[str, str]) -> Response:
    for name, value in headers.items():
        resp.headers[name] = value
    held = g.pop("stream_slot", None)
    if held is not None:
        if resp.is_streamed:
            resp.call_on_close(lambda: _release(*held))
        else:
            _release(*held)
    return resp


def _teardown(_exc: BaseException | None) -> None:
    held = g.pop("stream_slot", None)
    if held is not None:
        _release(*held)
