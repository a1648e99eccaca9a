"""The OpenAI Images API (GPT Image models): generations (JSON) and edits (multipart).

Knows the wire format and how failures look; knows nothing about accounts, tasks or billing.
Wire rules (provider-wire-formats.md §3): always send `model`; never send `response_format`
(GPT Image always answers base64); edits carry every input as a repeated `image[]` part.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests

from beatra import jsonsafe
from beatra.catalog.model import Route
from beatra.providers.failures import ProviderFailure
from beatra.providers.http import upstream_session
from beatra.providers.openai_errors import error_of, transport_problem

MAX_EDIT_IMAGES = 16
# Error codes OpenAI uses when its safety system refuses a prompt or an input image.
_POLICY_CODES = frozenset({"moderation_blocked", "content_policy_violation",
                           "image_generation_user_error", "safety_violation"})


@dataclass(frozen=True)
class ImageRequest:
    upstream_model: str
    prompt: str
    n: int
    size: str  # "WxH" or "auto"
    quality: str  # low | medium | high | auto
    output_format: str  # png | jpeg | webp

    def fields(self) -> dict[str, Any]:
        return {"model": self.upstream_model, "prompt": self.prompt, "n": self.n,
                "size": self.size, "quality": self.quality,
                "output_format": self.output_format}


@dataclass(frozen=True)
class InputImage:
    filename: str
    data: bytes
    mime_type: str


@dataclass
class ImageResult:
    images: list[bytes]
    usage: dict[str, Any]
    size: str | None = None
    quality: str | None = None
    output_format: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def classify(resp: requests.Response, provider: str) -> ProviderFailure:
    status = resp.status_code
    err = error_of(resp)
    message, code, kind = err.message, err.code, err.type
    where = f"upstream {provider} answered {status}: {message}"
    if status == 400 and (code in _POLICY_CODES or kind in _POLICY_CODES):
        return ProviderFailure("content_policy_violation", message, status, retryable=False)
    if status == 429:
        quota = code == "insufficient_quota" or kind == "insufficient_quota"
        return ProviderFailure("model_unavailable", where, status, retryable=not quota,
                               try_next=True)
    if status in (401, 403):
        return ProviderFailure("model_unavailable", f"upstream {provider} refused our credentials",
                             status, retryable=False)
    if status == 404:
        return ProviderFailure("model_unavailable", where, status, retryable=False,
                               try_next=True)
    if status == 408 or status >= 500:
        return ProviderFailure("upstream_error", where, status)
    return ProviderFailure("invalid_request", where, status, retryable=False)


def _post(route: Route, path: str, **kwargs: Any) -> requests.Response:
    provider = route.provider
    try:
        resp = upstream_session().post(
            f"{provider.base_url}{path}",
            headers={"Authorization": f"Bearer {provider.api_key}",
                     "Accept": "application/json", **kwargs.pop("headers", {})},
            timeout=(provider.connect_timeout, provider.read_timeout),
            **kwargs,
        )
    except requests.RequestException as exc:
        unreachable, message = transport_problem(exc, provider.name)
        raise ProviderFailure("model_unavailable" if unreachable else "upstream_error",
                              message) from None
    if resp.status_code >= 400:
        try:
            raise classify(resp, provider.name)
        finally:
            resp.close()
    return resp


def _result(resp: requests.Response, provider: str) -> ImageResult:
    malformed = ProviderFailure("upstream_error", f"upstream {provider} sent a malformed body")
    try:
        body = orjson.loads(resp.content)
    except (orjson.JSONDecodeError, requests.RequestException):
        raise malformed from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or not data:
        raise malformed
    images = []
    for item in data:
        b64 = item.get("b64_json") if isinstance(item, dict) else None
        if not isinstance(b64, str) or not b64:
            raise ProviderFailure("upstream_error",
                                  f"upstream {provider} sent an image without b64_json")
        try:
            images.append(base64.b64decode(b64, validate=True))
        except (binascii.Error, ValueError):
            raise ProviderFailure("upstream_error",
                                  f"upstream {provider} sent invalid base64") from None
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return ImageResult(images=images, usage=usage, size=body.get("size"),
                       quality=body.get("quality"), output_format=body.get("output_format"),
                       raw={k: v for k, v in body.items() if k != "data"})


def generate(route: Route, req: ImageRequest) -> ImageResult:
    """POST {base}/images/generations (JSON)."""
    resp = _post(route, "/images/generations", data=jsonsafe.dumps(req.fields()),
                 headers={"Content-Type": "application/json"})
    return _result(resp, route.provider.name)


def edit(route: Route, req: ImageRequest, images: list[InputImage]) -> ImageResult:
    """POST {base}/images/edits (multipart): 1-16 `image[]` parts plus the fields."""
    if not 1 <= len(images) <= MAX_EDIT_IMAGES:
        raise ValueError(f"edits take 1-{MAX_EDIT_IMAGES} images, not {len(images)}")
    files = [("image[]", (img.filename, img.data, img.mime_type)) for img in images]
    form = {k: str(v) for k, v in req.fields().items()}
    resp = _post(route, "/images/edits", data=form, files=files)
    return _result(resp, route.provider.name)
