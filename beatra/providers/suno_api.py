"""Suno through the sunoapi.org API family: submit (`/api/v1/generate` or
`/api/v1/generate/upload-cover`), then poll `/api/v1/generate/record-info?taskId=`.

Knows the wire format and how failures look; knows nothing about accounts, tasks or billing.
Wire rules (provider-wire-formats.md §5.1): HTTP 200 can carry an error body `code`; code 429
means *out of credits* (not a rate limit; 405 and 430 are the throttling codes); every request
makes two clips; `TEXT_SUCCESS` and `FIRST_SUCCESS` are not terminal; `callBackUrl` is required
even though we poll; polling answers are camelCase, callbacks snake_case.
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
from beatra.providers.openai_errors import transport_problem

VERSIONS = ("V4", "V4_5", "V4_5PLUS", "V4_5ALL", "V5", "V5_5")
# Field limits by model version (characters): prompt (lyrics in custom mode), style, title.
CUSTOM_LIMITS = {"V4": (3000, 200, 80), "V4_5ALL": (5000, 1000, 80)}
DEFAULT_CUSTOM_LIMITS = (5000, 1000, 100)
DESCRIPTION_LIMIT = 500
COVER_DESCRIPTION_LIMIT = 400

PENDING_STATUSES = ("PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS")
# Terminal failure statuses → (public code, retryable).
FAILED_STATUSES: dict[str, tuple[str, bool]] = {
    "CREATE_TASK_FAILED": ("upstream_error", False),
    "GENERATE_AUDIO_FAILED": ("upstream_error", True),
    "CALLBACK_EXCEPTION": ("upstream_error", True),
    "SENSITIVE_WORD_ERROR": ("content_policy_violation", False),
}
# Body `code` → (public code, retryable) for submit and record-info answers.
BODY_CODES: dict[int, tuple[str, bool]] = {
    400: ("upstream_error", False),
    401: ("model_unavailable", False),
    404: ("upstream_error", False),
    405: ("rate_limited", True),
    413: ("upstream_error", False),
    429: ("upstream_insufficient_balance", False),  # out of credits, not a rate limit
    430: ("rate_limited", True),
    455: ("model_unavailable", True),  # maintenance
    500: ("upstream_error", True),
}


# Body codes that refuse the request outright, so no job was started: another route (another
# reseller account) may take it. Anything else after the request was sent (a timeout, a broken
# or malformed answer, an unknown code) may have started a job: never submitted twice.
REFUSALS = frozenset({401, 405, 429, 430, 455, 500})


def custom_limits(version: str) -> tuple[int, int, int]:
    return CUSTOM_LIMITS.get(version, DEFAULT_CUSTOM_LIMITS)


def _failure(code: str, message: str, retryable: bool, upstream_code: int | None = None, *,
             try_next: bool = False) -> ProviderFailure:
    """Suno's answers map to public task codes directly (see BODY_CODES); `try_next` only
    where no job can have been started (see REFUSALS)."""
    return ProviderFailure(code, message, retryable=retryable, upstream_code=upstream_code,
                           try_next=try_next)


@dataclass(frozen=True)
class SunoRequest:
    version: str  # V5_5, …
    custom_mode: bool
    instrumental: bool
    prompt: str  # lyrics in custom mode, a description otherwise
    style: str | None
    title: str | None
    callback_url: str
    upload_url: str | None = None  # upload-cover
    extra: dict[str, Any] = field(default_factory=dict)  # negativeTags, vocalGender, …

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.version, "customMode": self.custom_mode,
                                "instrumental": self.instrumental,
                                "callBackUrl": self.callback_url}
        if self.custom_mode:
            body.update(style=self.style, title=self.title)
            if not self.instrumental:
                body["prompt"] = self.prompt
        else:
            body["prompt"] = self.prompt
        if self.upload_url is not None:
            body["uploadUrl"] = self.upload_url
        body.update(self.extra)
        return body


@dataclass(frozen=True)
class Clip:
    id: str
    audio_url: str
    title: str | None
    lyrics: str | None
    tags: str | None
    duration_seconds: float | None


@dataclass(frozen=True)
class Record:
    status: str
    clips: list[Clip]
    error_code: Any = None
    error_message: str | None = None

    @property
    def done(self) -> bool:
        return self.status == "SUCCESS"

    @property
    def pending(self) -> bool:
        return self.status in PENDING_STATUSES

    def failure(self) -> ProviderFailure:
        code, retryable = FAILED_STATUSES.get(self.status, ("upstream_error", False))
        detail = f": {self.error_message}" if self.error_message else ""
        return _failure(code, f"Suno task ended {self.status}{detail}", retryable)


def failure_for_code(code: int, message: str) -> ProviderFailure:
    public, retryable = BODY_CODES.get(code, ("upstream_error", code >= 500))
    return _failure(public, f"Suno answered code {code}: {message}", retryable, code,
                    try_next=code in REFUSALS)


def _request(route: Route, method: str, path: str, **kwargs: Any) -> Any:
    """The `data` of a code-200 answer; a ProviderFailure otherwise."""
    provider = route.provider
    try:
        resp = upstream_session().request(
            method, f"{provider.base_url}{path}",
            headers={"Authorization": f"Bearer {provider.api_key}", "Accept": "application/json",
                     **({"Content-Type": "application/json"} if "data" in kwargs else {})},
            timeout=(provider.connect_timeout, provider.read_timeout), **kwargs)
    except requests.RequestException as exc:
        unreachable, message = transport_problem(exc, provider.name)
        raise _failure("upstream_error", message, True, try_next=unreachable) from None
    with resp:
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            body = None
    if isinstance(body, dict) and isinstance(body.get("code"), int) and body["code"] != 200:
        raise failure_for_code(body["code"], str(body.get("msg") or "error"))
    if resp.status_code >= 400:
        raise failure_for_code(resp.status_code, f"HTTP {resp.status_code}")
    if not isinstance(body, dict) or body.get("code") != 200:
        raise _failure("upstream_error", f"upstream {provider.name} sent a malformed body",
                          True)
    return body.get("data")


def submit(route: Route, req: SunoRequest) -> str:
    """Start a generation (or an upload-cover); returns the upstream taskId."""
    path = "/api/v1/generate/upload-cover" if req.upload_url else "/api/v1/generate"
    data = _request(route, "POST", path, data=jsonsafe.dumps(req.body()))
    task_id = data.get("taskId") if isinstance(data, dict) else None
    if not isinstance(task_id, str) or not task_id:
        raise _failure("upstream_error", "Suno accepted the request without a taskId", True)
    return task_id


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _clip(item: dict[str, Any]) -> Clip:
    """A clip from a record-info item (camelCase) or a callback item (snake_case)."""
    def get(camel: str, snake: str) -> Any:
        return item.get(camel) if camel in item else item.get(snake)

    lyrics = item.get("prompt")
    return Clip(id=str(item.get("id") or ""), audio_url=str(get("audioUrl", "audio_url") or ""),
                title=item.get("title") or None,
                lyrics=lyrics if isinstance(lyrics, str) and lyrics.strip() else None,
                tags=item.get("tags") or None, duration_seconds=_float(item.get("duration")))


def record_info(route: Route, task_id: str) -> Record:
    data = _request(route, "GET", "/api/v1/generate/record-info", params={"taskId": task_id})
    if not isinstance(data, dict) or not isinstance(data.get("status"), str):
        raise _failure("upstream_error", "Suno sent a record without a status", True)
    response = data.get("response")
    items = (response.get("sunoData") if isinstance(response, dict) else None) or []
    clips = [_clip(item) for item in items if isinstance(item, dict)]
    return Record(status=data["status"], clips=clips, error_code=data.get("errorCode"),
                  error_message=data.get("errorMessage") or None)


def callback_task_id(body: Any) -> tuple[str | None, str | None, int | None]:
    """(upstream taskId, callbackType, code) from a callback POST; Nones where absent."""
    if not isinstance(body, dict):
        return None, None, None
    data = body.get("data")
    if not isinstance(data, dict):
        data = {}
    task_id = data.get("task_id") or data.get("taskId")
    kind = data.get("callbackType") or data.get("callback_type")
    code = body.get("code")
    return (str(task_id) if task_id else None, str(kind) if kind else None,
            code if isinstance(code, int) else None)
