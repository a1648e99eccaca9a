"""POST /v1/chat/completions, below the view: reserve → route → relay → settle.

Money: the reserve is an upper bound (prompt bound + output cap x n at the dearest meters);
the capture is the upstream's reported usage (or, when a stream ends without usage, an
estimate of what was relayed); the rest is released. Nothing is charged when no output was
produced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import orjson
import requests
from flask import Flask, Response, current_app, stream_with_context

from beatra.billing import wallet
from beatra.billing.money import ZERO, fmt
from beatra.catalog.circuits import breaker
from beatra.catalog.model import Catalog, Model, Route
from beatra.catalog.registry import usable_routes
from beatra.chat import memos
from beatra.chat.keepalive import PING, PING_SECONDS, with_pings
from beatra.chat.policy import ChatPolicy, policy_for
from beatra.chat.pricing import (
    UsageCounts,
    charge,
    estimate_tokens,
    prompt_token_bound,
    reserve_amount,
    usage_counts,
)
from beatra.chat.reasoning import ThinkSplitter, normalise_message
from beatra.chat.routing import model_unavailable, resolve_model
from beatra.errors import ApiError, error_body
from beatra.extensions import db
from beatra.providers import openai_chat
from beatra.providers.openai_chat import IncompleteStream, UpstreamFailure

log = logging.getLogger(__name__)

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_DONE = b"data: [DONE]\n\n"
T = TypeVar("T")


@dataclass
class ChatCall:
    account_id: str
    request_id: str
    request: dict[str, Any]
    catalog: Catalog
    model: Model
    policy: ChatPolicy
    reserved: Decimal = ZERO

    def restore_reasoning(self, tool_call_ids: list[str]) -> str | None:
        return memos.recall(self.account_id, tool_call_ids)

    def settle(self, counts: UsageCounts | None) -> Decimal:
        amount = charge(counts, self.model) if counts else ZERO
        charged = wallet.settle(self.account_id, self.reserved, amount, self.request_id,
                                own=True)
        if amount > self.reserved:
            log.warning("usage exceeded the reserve; charged the reserve",
                        extra={"fields": {"model": self.model.id, "usage_credits": str(amount)}})
        return charged

    def credits_fields(self, charged: Decimal) -> dict[str, str | None]:
        return {"credits": fmt(charged),
                "credits_usd_reference": fmt(self.catalog.usd(charged))}


def complete(request: dict[str, Any], account_id: str, request_id: str,
             catalog: Catalog) -> Response:
    model, _auto = resolve_model(catalog, request)
    policy = policy_for(model)
    call = ChatCall(account_id, request_id, request, catalog, model, policy)
    call.reserved = wallet.reserve(
        account_id, reserve_amount(request, model, policy.output_limit(request)), request_id,
        own=True,
    )
    try:
        if request.get("stream"):
            return _stream(call)
        return _sync(call)
    except BaseException:
        if call.reserved is not None:
            _release_quietly(call)
        raise


def _release_quietly(call: ChatCall) -> None:
    db.session.rollback()
    call.settle(None)
    call.reserved = None  # type: ignore[assignment]


def _first_answer(
    call: ChatCall, opener: Callable[[Route, dict[str, Any]], T]
) -> tuple[Route, T]:
    """Try each usable route in catalog order until one answers.

    Moves on only after failures where nothing has reached the client yet and another route
    may do better (transport errors, 5xx, 429, malformed bodies); a request the upstream
    rejects as invalid is reported at once."""
    last: UpstreamFailure | None = None
    for route in usable_routes(call.model):
        body = call.policy.upstream_body(call.request, route.upstream_model,
                                         restore_reasoning=call.restore_reasoning)
        try:
            result = opener(route, body)
        except UpstreamFailure as failure:
            last = failure
            if not failure.try_next:
                break
            breaker.failure(route)
            log.warning("upstream route failed", extra={"fields": {
                "provider": route.provider.name, "kind": failure.kind,
                "status": failure.status, "error": failure.message}})
            continue
        breaker.success(route)
        return route, result
    raise _client_error(last, call.model)


def _client_error(failure: UpstreamFailure | None, model: Model) -> ApiError:
    if failure is None:
        return model_unavailable(model.id)
    if failure.kind == "rejected":
        return ApiError(422, "invalid_request", f"Upstream rejected the request: "
                        f"{failure.message}", param=failure.param,
                        details={"upstream_status": failure.status})
    headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
    if failure.kind == "unavailable":
        return ApiError(503, "model_unavailable", f"Model '{model.id}' is unavailable: "
                        f"{failure.message}", retryable=failure.retryable, headers=headers)
    return ApiError(502, "upstream_error", f"Model request failed: {failure.message}",
                    retryable=failure.retryable, headers=headers)


# ---- non-streaming ----------------------------------------------------------------------

def _sync(call: ChatCall) -> Response:
    def open_json(route: Route, body: dict[str, Any]) -> dict[str, Any]:
        resp = openai_chat.send(route.provider, body, stream=False)
        try:
            return openai_chat.read_json(resp, route.provider.name)
        finally:
            resp.close()

    _, body = _first_answer(call, open_json)
    return _finish_sync(call, body)


def _finish_sync(call: ChatCall, body: dict[str, Any]) -> Response:
    remembered: dict[str, str] = {}
    relayed = 0
    for choice in body["choices"]:
        message = choice.get("message")
        if not isinstance(message, dict):
            continue
        normalise_message(message)
        reasoning = message.get("reasoning_content")
        relayed += _chars(message.get("content")) + _chars(reasoning)
        for tool_call in message.get("tool_calls") or []:
            relayed += _chars((tool_call.get("function") or {}).get("arguments"))
            if reasoning and call.policy.reasoning_echo:
                remembered[tool_call.get("id")] = reasoning
    usage = body.get("usage")
    if not isinstance(usage, dict):
        usage = _estimated_usage(call, relayed)
    charged = call.settle(usage_counts(usage))
    call.reserved = None  # type: ignore[assignment]
    if remembered:
        memos.remember(call.account_id, remembered)
    usage.update(call.credits_fields(charged))
    body["usage"] = usage
    body["model"] = call.model.id
    body.setdefault("object", "chat.completion")
    return Response(orjson.dumps(body), mimetype="application/json")


def _chars(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _estimated_usage(call: ChatCall, relayed_chars: int) -> dict[str, Any]:
    prompt = estimate_tokens(prompt_token_bound(call.request))
    completion = estimate_tokens(relayed_chars)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "estimated": True}


# ---- streaming --------------------------------------------------------------------------

class _MidStreamError(Exception):
    def __init__(self, code: str, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.code, self.message, self.retryable = code, message, retryable


@dataclass
class _ChoiceState:
    splitter: ThinkSplitter = field(default_factory=ThinkSplitter)
    reasoning: list[str] = field(default_factory=list)
    tool_call_ids: list[str] = field(default_factory=list)
    finished: bool = False


def _stream(call: ChatCall) -> Response:
    def open_stream(route: Route, body: dict[str, Any]) -> requests.Response:
        return openai_chat.send(route.provider, body, stream=True)

    route, resp = _first_answer(call, open_stream)
    relay = _StreamRelay(call, route, resp)
    db.session.remove()  # no pooled connection held for the life of the stream
    response = Response(stream_with_context(relay.events()), mimetype="text/event-stream",
                        headers=_SSE_HEADERS)
    # If the client leaves before the first event, the generator never runs: settle anyway.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    response.call_on_close(lambda: relay.settle_in(app))
    return response


class _StreamRelay:
    def __init__(self, call: ChatCall, route: Route, resp: requests.Response) -> None:
        self.call = call
        self.route = route
        self.resp = resp
        options = call.request.get("stream_options") or {}
        self.client_wants_usage = bool(options.get("include_usage"))
        self.choices: dict[int, _ChoiceState] = {}
        self.usage: dict[str, Any] | None = None
        self.relayed_chars = 0
        self.template: dict[str, Any] = {}

    def events(self) -> Iterator[bytes]:
        failure: _MidStreamError | None = None
        try:
            for payload in with_pings(openai_chat.sse_data(self.resp), PING_SECONDS):
                if payload is None:
                    yield PING  # the upstream is silent (e.g. thinking); keep proxies awake
                    continue
                out = self._relay_chunk(payload)
                if out is not None:
                    yield out
        except _MidStreamError as exc:
            failure = exc
        except IncompleteStream:
            if not self._all_finished():
                failure = _MidStreamError("upstream_error",
                                          "The upstream stream ended before completion.")
        except requests.RequestException:
            failure = _MidStreamError("upstream_error", "The upstream connection broke.")
        finally:
            self.resp.close()
            # Also runs when the client goes away (GeneratorExit): bill what was relayed.
            self._settle()
        if failure is not None:
            yield self._error_event(failure)
        elif self.client_wants_usage and self.usage is not None:
            yield self._usage_event()
        yield _DONE

    def _relay_chunk(self, payload: bytes) -> bytes | None:
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise _MidStreamError("upstream_error", "The upstream sent a malformed event.") \
                from None
        if not isinstance(chunk, dict):
            raise _MidStreamError("upstream_error", "The upstream sent an unexpected event.")
        if chunk.get("error"):
            err = chunk["error"]
            message = err.get("message") if isinstance(err, dict) else str(err)
            raise _MidStreamError("upstream_error", f"Upstream failed mid-stream: {message}")
        usage = chunk.pop("usage", None)
        if isinstance(usage, dict):
            self.usage = usage
        choices = chunk.get("choices")
        if not choices:
            return None  # the usage-only chunk: re-emitted with credits at the end
        if not self.template:
            self.template = {k: chunk.get(k) for k in ("id", "created", "system_fingerprint")}
        chunk.pop("obfuscation", None)
        chunk["model"] = self.call.model.id
        for choice in choices:
            self._normalise_choice(choice)
        if self.client_wants_usage:
            chunk["usage"] = None  # OpenAI's shape: null on every chunk but the last
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _normalise_choice(self, choice: dict[str, Any]) -> None:
        state = self.choices.setdefault(choice.get("index", 0), _ChoiceState())
        delta = choice.get("delta") or {}
        reasoning = delta.pop("reasoning_content", None) or ""
        alt = delta.pop("reasoning", None)
        delta.pop("reasoning_details", None)
        if not reasoning and isinstance(alt, str):
            reasoning = alt
        content = delta.get("content")
        if isinstance(content, str) and content:
            think, text = state.splitter.feed(content)
            reasoning += think
            delta["content"] = text
        if choice.get("finish_reason") is not None:
            state.finished = True
            think, text = state.splitter.flush()
            reasoning += think
            if text:
                delta["content"] = (delta.get("content") or "") + text
        if reasoning:
            delta["reasoning_content"] = reasoning
            state.reasoning.append(reasoning)
        for tool_call in delta.get("tool_calls") or []:
            if tool_call.get("id"):
                state.tool_call_ids.append(tool_call["id"])
            self.relayed_chars += _chars((tool_call.get("function") or {}).get("arguments"))
        self.relayed_chars += len(reasoning) + _chars(delta.get("content"))
        choice["delta"] = delta

    def settle_in(self, app: Flask) -> None:
        if self.call.reserved is not None:
            self.resp.close()
            with app.app_context():
                self._settle()

    def _all_finished(self) -> bool:
        return bool(self.choices) and all(s.finished for s in self.choices.values())

    def _settle(self) -> Decimal:
        call = self.call
        if call.reserved is None:
            return ZERO
        try:
            if self.usage is None and self.relayed_chars:
                # No usage from upstream (cut short, or it never reports it): bill an estimate
                # of what was relayed, and report that estimate to the client.
                self.usage = _estimated_usage(call, self.relayed_chars)
            counts = usage_counts(self.usage) if self.usage else None
            charged = call.settle(counts)
            call.reserved = None  # type: ignore[assignment]
            if call.policy.reasoning_echo:
                memos.remember(call.account_id, {
                    tool_id: "".join(state.reasoning)
                    for state in self.choices.values() if state.reasoning
                    for tool_id in state.tool_call_ids
                })
            if self.usage is not None:
                self.usage.update(call.credits_fields(charged))
            return charged
        finally:
            db.session.remove()

    def _error_event(self, failure: _MidStreamError) -> bytes:
        body = error_body(failure.code, failure.message, retryable=failure.retryable)
        return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"

    def _usage_event(self) -> bytes:
        chunk = {
            "id": self.template.get("id"),
            "object": "chat.completion.chunk",
            "created": self.template.get("created") or int(time.time()),
            "model": self.call.model.id,
            "system_fingerprint": self.template.get("system_fingerprint"),
            "choices": [],
            "usage": self.usage,
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"
