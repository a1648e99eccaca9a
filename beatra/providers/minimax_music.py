"""MiniMax music generation: `POST {base}/v1/music_generation` (one synchronous call that can
take minutes) and the one-step cover (`model: music-cover` + `audio_url`).

Knows the wire format and how failures look; knows nothing about accounts, tasks or billing.
Wire rules (provider-wire-formats.md §4): business errors arrive as HTTP 200 with a non-zero
`base_resp.status_code`, so that code is checked before anything else; `data.audio` is a hex
string (default) or a URL that expires (downloaded here, capped in size and time); cover models
take neither `is_instrumental` nor `lyrics_optimizer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import requests

from beatra import jsonsafe
from beatra.catalog.model import Route
from beatra.providers.failures import ProviderFailure
from beatra.providers.http import upstream_session
from beatra.providers.output_files import DownloadError, download

# base_resp.status_code → (public error code, retryable). Anything else: upstream_error, not
# retryable (an unknown code is more likely a request problem than a passing one).
STATUS_CODES: dict[int, tuple[str, bool]] = {
    1000: ("upstream_error", True),  # unknown error; MiniMax says retry
    1001: ("upstream_error", True),  # timeout
    1002: ("rate_limited", True),
    1004: ("model_unavailable", False),  # credentials / key-region mismatch: an operator fix
    1008: ("upstream_insufficient_balance", False),
    1024: ("upstream_error", True),
    1026: ("content_policy_violation", False),  # input sensitive
    1027: ("content_policy_violation", False),  # output sensitive
    1033: ("upstream_error", True),
    2013: ("upstream_error", False),  # invalid params: the same request fails again
    2038: ("model_unavailable", False),  # real-name verification needed
    2061: ("model_unavailable", False),  # model not on the plan
}
# HTTP statuses seen without a usable body (MiniMax CLI: 401/403/429 occur).
_HTTP_CODES = {401: 1004, 403: 1004, 429: 1002}


def _failure(code: str, message: str, retryable: bool,
             upstream_code: int | None = None) -> ProviderFailure:
    """MiniMax's answers map to public task codes directly; another route helps only when the
    same request may succeed later."""
    return ProviderFailure(code, message, retryable=retryable, upstream_code=upstream_code)


@dataclass(frozen=True)
class MusicRequest:
    upstream_model: str
    prompt: str
    lyrics: str | None
    instrumental: bool
    lyrics_optimizer: bool
    audio_setting: dict[str, Any]
    output_format: str = "hex"  # hex | url
    cover_audio_url: str | None = None  # one-step cover (music-cover models)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.upstream_model, "prompt": self.prompt,
                                "audio_setting": dict(self.audio_setting),
                                "output_format": self.output_format}
        if self.lyrics:
            body["lyrics"] = self.lyrics
        if self.cover_audio_url is not None:
            body["audio_url"] = self.cover_audio_url  # cover models: no instrumental/optimizer
        else:
            body["is_instrumental"] = self.instrumental
            if self.lyrics_optimizer and not self.instrumental and not self.lyrics:
                body["lyrics_optimizer"] = True
        return body


@dataclass
class MusicResult:
    audio: bytes
    format: str
    duration_ms: int | None
    trace_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


def failure_for(status_code: int, message: str) -> ProviderFailure:
    code, retryable = STATUS_CODES.get(status_code, ("upstream_error", False))
    return _failure(code, f"MiniMax answered {status_code}: {message}", retryable,
                          status_code)


def _body(resp: requests.Response) -> dict[str, Any] | None:
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _check(resp: requests.Response, provider: str) -> dict[str, Any]:
    """The body of a successful answer, or the classified failure."""
    body = _body(resp)
    base = body.get("base_resp") if body else None
    status_code = base.get("status_code") if isinstance(base, dict) else None
    if isinstance(status_code, int) and status_code != 0:
        raise failure_for(status_code, str(base.get("status_msg") or "error"))  # type: ignore
    if resp.status_code >= 400:
        mapped = _HTTP_CODES.get(resp.status_code)
        if mapped is not None:
            raise failure_for(mapped, f"HTTP {resp.status_code}")
        raise _failure("upstream_error", f"upstream {provider} answered HTTP "
                             f"{resp.status_code}", resp.status_code >= 500 or
                             resp.status_code == 408)
    if body is None:
        raise _failure("upstream_error", f"upstream {provider} sent a malformed body",
                             True)
    return body


def _post(route: Route, path: str, body: dict[str, Any]) -> dict[str, Any]:
    provider = route.provider
    try:
        resp = upstream_session().post(
            f"{provider.base_url}{path}", data=jsonsafe.dumps(body),
            headers={"Authorization": f"Bearer {provider.api_key}",
                     "Content-Type": "application/json", "Accept": "application/json"},
            timeout=(provider.connect_timeout, provider.read_timeout))
    except requests.Timeout:
        raise _failure("upstream_error", f"upstream {provider.name} timed out after "
                             f"{provider.read_timeout:g}s", True) from None
    except requests.RequestException as exc:
        raise _failure("upstream_error", f"cannot reach upstream {provider.name} "
                             f"({type(exc).__name__})", True) from None
    try:
        return _check(resp, provider.name)
    finally:
        resp.close()


def generate(route: Route, req: MusicRequest) -> MusicResult:
    """POST {base}/v1/music_generation; returns the audio bytes (hex decoded or downloaded)."""
    body = _post(route, "/v1/music_generation", req.body())
    data = body.get("data")
    audio = data.get("audio") if isinstance(data, dict) else None
    if not isinstance(audio, str) or not audio:
        raise _failure("upstream_error", "MiniMax answered without audio", True)
    if data.get("status", 2) != 2:  # type: ignore[union-attr]
        raise _failure("upstream_error", "MiniMax answered before the audio was done "
                             f"(status {data.get('status')})", True)  # type: ignore[union-attr]
    if audio.startswith(("http://", "https://")):
        try:
            raw = download(audio, read_timeout=route.provider.read_timeout)
        except DownloadError as err:
            raise _failure("upstream_error", f"MiniMax's audio URL failed: {err.message}",
                                 err.retryable) from None
    else:
        try:
            raw = bytes.fromhex(audio)
        except ValueError:
            raise _failure("upstream_error", "MiniMax sent audio that is neither hex nor "
                                 "a URL", True) from None
    extra = body.get("extra_info")
    if not isinstance(extra, dict):
        extra = {}
    duration = extra.get("music_duration")
    return MusicResult(audio=raw, format=str(req.audio_setting.get("format", "mp3")),
                       duration_ms=duration if isinstance(duration, int) else None,
                       trace_id=body.get("trace_id"), extra=extra)
