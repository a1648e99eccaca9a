"""OpenAI-compatible chat upstreams (OpenAI, DeepSeek, Kimi, GLM, Hunyuan, Doubao, Qwen…).

Knows the wire format and how failures look; knows nothing about accounts or billing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import requests

from beatra.catalog.model import Provider
from beatra.providers import http
from beatra.providers.failures import ProviderFailure
from beatra.providers.openai_errors import error_of, transport_problem


def classify(resp: requests.Response, provider: str) -> ProviderFailure:
    status = resp.status_code
    err = error_of(resp)
    message, code, param = err.message, err.code or err.type, err.param
    where = f"upstream {provider} answered {status}: {message}"
    if status == 429:
        if code == "insufficient_quota":
            return ProviderFailure("model_unavailable", where, status, retryable=False,
                                   try_next=True)
        return ProviderFailure("model_unavailable", where, status,
                               retry_after=resp.headers.get("retry-after"))
    if status in (401, 403):
        return ProviderFailure("model_unavailable", f"upstream {provider} refused our credentials",
                               status, retryable=False, try_next=True)
    if status == 404:
        return ProviderFailure("model_unavailable", where, status, retryable=False,
                               try_next=True)
    if status == 408:
        return ProviderFailure("upstream_error", where, status)
    if 400 <= status < 500:
        pointer = f"/{param}" if param else None
        return ProviderFailure("invalid_request", message, status, param=pointer, try_next=False,
                               retryable=False)
    if status == 503:
        return ProviderFailure("model_unavailable", where, status,
                               retry_after=resp.headers.get("retry-after"))
    return ProviderFailure("upstream_error", where, status)


def send(provider: Provider, body: dict[str, Any], *, stream: bool) -> requests.Response:
    """POST {base}/chat/completions; raises ProviderFailure for transport errors and non-2xx."""
    try:
        resp = http.post(
            f"{provider.base_url}/chat/completions",
            orjson.dumps(body),
            {"Authorization": f"Bearer {provider.api_key}",
             "Content-Type": "application/json",
             "Accept": "text/event-stream" if stream else "application/json"},
            timeout=(provider.connect_timeout, provider.read_timeout),
            stream=stream,
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


def read_json(resp: requests.Response, provider: str) -> dict[str, Any]:
    try:
        body = orjson.loads(resp.content)
    except (orjson.JSONDecodeError, requests.RequestException):
        raise ProviderFailure("upstream_error",
                              f"upstream {provider} sent a malformed body") from None
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise ProviderFailure("upstream_error", f"upstream {provider} sent an unexpected body")
    return body


class IncompleteStream(Exception):
    """The upstream's SSE stream ended without its `[DONE]` terminator."""


def sse_data(resp: requests.Response) -> Iterator[bytes]:
    """The `data:` payloads of an SSE response, as they arrive, until `[DONE]`.

    Comments and other fields are skipped; multi-line data is joined with newlines.
    Raises requests exceptions if the connection breaks.
    """
    buf = b""
    data: list[bytes] = []
    for chunk in resp.iter_content(chunk_size=None):
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl].rstrip(b"\r"), buf[nl + 1:]
            if not line:
                if data:
                    payload = b"\n".join(data)
                    data = []
                    if payload.strip() == b"[DONE]":
                        return
                    yield payload
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
    if data:
        payload = b"\n".join(data)
        if payload.strip() == b"[DONE]":
            return
        yield payload
    raise IncompleteStream("upstream closed the stream before [DONE]")
