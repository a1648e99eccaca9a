"""Reading failures in the OpenAI wire format (chat and images share it)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import requests


@dataclass(frozen=True)
class OpenAIError:
    message: str
    code: str | None = None
    type: str | None = None
    param: str | None = None


def error_of(resp: requests.Response) -> OpenAIError:
    """The `{"error": {message, type, param, code}}` body of a failed call, tolerating any other
    shape (some compatible upstreams answer `{"message": …}` or plain text)."""
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return OpenAIError(resp.text[:300] or resp.reason or f"HTTP {resp.status_code}")
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        code, kind, param = err.get("code"), err.get("type"), err.get("param")
        return OpenAIError(
            str(err.get("message") or code or kind or f"HTTP {resp.status_code}"),
            str(code) if code else None,
            str(kind) if kind else None,
            param if isinstance(param, str) and param else None,
        )
    if isinstance(body, dict) and body.get("message"):
        return OpenAIError(str(body["message"]))
    return OpenAIError(f"HTTP {resp.status_code}")


def transport_problem(exc: requests.RequestException, provider: str) -> tuple[bool, str]:
    """(unreachable, message) for a call that got no HTTP answer: unreachable means the
    connection was never made (another route or a later retry may do better); otherwise it
    timed out or broke mid-way."""
    if isinstance(exc, requests.ConnectTimeout):
        return True, f"cannot reach upstream {provider} (connect timeout)"
    if isinstance(exc, requests.Timeout):
        return False, f"upstream {provider} timed out"
    if isinstance(exc, requests.ConnectionError) and "timed out" not in str(exc):
        return True, f"cannot reach upstream {provider}"
    if isinstance(exc, requests.ConnectionError):
        return False, f"upstream {provider} timed out"
    return False, f"upstream {provider} failed: {type(exc).__name__}"
