"""POST /v1/chat/completions, below the view: reserve → route → relay → settle.

Money: the reserve is an upper bound (prompt bound + output cap x n at the dearest meters);
the capture is the upstream's reported usage (or, when a stream ends without usage, an
estimate of what was relayed); the rest is released. Nothing is charged when no output was
produced. Every hold is settled exactly once whatever ends the call (see beatra.billing.holds
for what happens when the process itself dies).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import requests
from flask import Response, current_app, stream_with_context

from beatra import metrics
from beatra.accesslog import access_fields
from beatra.billing.holds import LeaseKeeper, keeper_for
from beatra.billing.money import ZERO, fmt
from beatra.billing.wallet import Attribution, HeldCredits, reserve
from beatra.catalog.failover import NoRouteAdmitted, first_answer
from beatra.catalog.model import Catalog, Model, Route
from beatra.catalog.registry import usable_routes
from beatra.chat import memos
from beatra.chat.keepalive import PING, Opened, ReadAhead, abort_socket
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
from beatra.chat.routing import CAPABILITY, model_unavailable, resolve_model
from beatra.errors import ApiError, error_body
from beatra.extensions import db
from beatra.providers import openai_chat
from beatra.providers.failures import ProviderFailure
from beatra.providers.openai_chat import IncompleteStream

log = logging.getLogger(__name__)

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_DONE = b"data: [DONE]\n\n"


@dataclass
class ChatCall:
    account_id: str
    request_id: str
    request: dict[str, Any]
    catalog: Catalog
    model: Model
    policy: ChatPolicy
    keeper: LeaseKeeper
    hold: HeldCredits | None = None
    charged: Decimal | None = None  # set once settled
    # What the call has earned so far (renewals record it; the reaper captures it).
    accrued: Callable[[], Decimal] = lambda: ZERO

    def restore_reasoning(self, tool_call_ids: list[str]) -> str | None:
        return memos.recall(self.account_id, tool_call_ids)

    def settle(self, counts: UsageCounts | None) -> Decimal:
        """Capture what `counts` cost (nothing when None) and release the rest; idempotent."""
        if self.charged is not None or self.hold is None:
            return self.charged or ZERO
        amount = charge(counts, self.model) if counts else ZERO
        if amount > self.hold.amount:
            log.warning("usage exceeded the reserve; charged the reserve",
                        extra={"fields": {"model": self.model.id, "usage_credits": str(amount)}})
        amount = min(amount, self.hold.amount)
        tokens = (counts.prompt, counts.completion) if counts else (None, None)
        self.charged = amount
        if self.keeper.settle(self.hold, amount, tokens=tokens) is not None:
            metrics.record_charge(CAPABILITY, amount)
        return amount

    def credits_fields(self, charged: Decimal) -> dict[str, str | None]:
        return {"credits": fmt(charged),
                "credits_usd_reference": fmt(self.catalog.usd(charged))}

    def routes_and_bodies(self) -> list[tuple[Route, dict[str, Any]]]:
        """The upstream body for each usable route, built up front (restoring reasoning reads
        the database, which the stream's helper thread must not)."""
        return [(route, self.policy.upstream_body(self.request, route.upstream_model,
                                                  restore_reasoning=self.restore_reasoning))
                for route in usable_routes(self.model)]


def complete(request: dict[str, Any], account_id: str, key_id: str | None, request_id: str,
             catalog: Catalog) -> Response:
    model = resolve_model(catalog, request)
    policy = policy_for(model)
    keeper = keeper_for(current_app._get_current_object())  # type: ignore[attr-defined]
    call = ChatCall(account_id, request_id, request, catalog, model, policy, keeper)
    call.hold = reserve(
        account_id, reserve_amount(request, model, policy.output_limit(request)),
        kind="chat", attribution=Attribution(key_id, request_id, CAPABILITY, model.id),
        lease_seconds=keeper.reap_seconds, own=True,
    )
    keeper.track(call.hold, lambda: call.accrued())
    try:
        if request.get("stream"):
            return _stream(call)
        return _sync(call)
    except BaseException:
        db.session.rollback()
        call.settle(None)  # nothing reached the client: release the whole hold
        raise


def _open_first(call: ChatCall, bodies: list[tuple[Route, dict[str, Any]]],
                opener: Callable[[Route, dict[str, Any]], Any]) -> tuple[Route, Any]:
    """The first route that answers (beatra.catalog.failover), as a client-facing error when
    none does: a request the upstream rejects as invalid is reported at once."""
    by_route = {id(route): body for route, body in bodies}
    try:
        return first_answer([route for route, _ in bodies],
                            lambda route: opener(route, by_route[id(route)]),
                            account_id=call.account_id, failures=(ProviderFailure,))
    except NoRouteAdmitted:
        raise model_unavailable(call.model) from None
    except ProviderFailure as failure:
        raise _client_error(failure, call.model) from None


def _client_error(failure: ProviderFailure, model: Model) -> ApiError:
    if failure.code == "invalid_request":
        return ApiError(422, "invalid_request", f"Upstream rejected the request: "
                        f"{failure.message}", param=failure.param,
                        details={"upstream_status": failure.status})
    headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
    if failure.code == "model_unavailable":
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

    _, body = _open_first(call, call.routes_and_bodies(), open_json)
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
    if remembered:
        memos.remember(call.account_id, remembered)
    usage.update(call.credits_fields(charged))
    body["usage"] = usage
    body["model"] = call.model.id
    body.setdefault("object", "chat.completion")
    access_fields().update(outcome="ok", credits=fmt(charged))
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
    """Open the upstream in a read-ahead helper and answer as soon as it does; if it is still
    silent after one ping interval (a model thinking before its headers), start the 200
    response anyway and send `: ping` comments meanwhile. Until then a failure is a plain HTTP
    error (routes still fail over); after it, an `event: error` like any mid-stream failure."""
    bodies = call.routes_and_bodies()
    db.session.remove()  # no pooled connection held for the life of the stream

    def open_upstream() -> Opened[bytes]:
        def open_stream(route: Route, body: dict[str, Any]) -> requests.Response:
            return openai_chat.send(route.provider, body, stream=True)

        _, resp = _open_first(call, bodies, open_stream)
        return Opened(openai_chat.sse_data(resp), resp.close, abort_socket(resp))

    upstream: ReadAhead[bytes] = ReadAhead(open_upstream)
    upstream.start()
    ping_seconds = current_app.extensions["beatra.settings"].sse_ping_seconds
    try:
        opened = upstream.wait_opened(ping_seconds)
    except BaseException:
        upstream.stop()
        raise
    relay = _StreamRelay(call, upstream, opened, ping_seconds)
    call.accrued = relay.accrued
    response = Response(stream_with_context(relay.events()), mimetype="text/event-stream",
                        headers=_SSE_HEADERS)
    # If the client leaves before the first event, the generator never runs: settle anyway.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    response.call_on_close(lambda: relay.close(app))
    return response


class _StreamRelay:
    def __init__(self, call: ChatCall, upstream: ReadAhead[bytes], opened: bool,
                 ping_seconds: float) -> None:
        self.call = call
        self.upstream = upstream
        self.opened = opened
        self.ping_seconds = ping_seconds
        options = call.request.get("stream_options") or {}
        self.client_wants_usage = bool(options.get("include_usage"))
        self.choices: dict[int, _ChoiceState] = {}
        self.usage: dict[str, Any] | None = None
        self.relayed_chars = 0
        self.template: dict[str, Any] = {}
        self.started = False
        # Outcome and bill for the access line written when the stream ends (beatra.accesslog);
        # taken now, while the request context is certain.
        self.access = access_fields()

    def events(self) -> Iterator[bytes]:
        self.started = True
        failure: _MidStreamError | None = None
        try:
            if not self.opened:
                yield PING  # headers out now; the upstream is still thinking
            for payload in self.upstream.items(self.ping_seconds, opened=self.opened):
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
        except ApiError as exc:  # opening failed after the pings began
            failure = _MidStreamError(exc.code, exc.message, exc.retryable)
        finally:
            # Also runs when the client goes away (GeneratorExit): stop reading without
            # touching the connection, then bill what was relayed. Neither step raises.
            self.upstream.stop()
            self._settle()
            self.access.update(outcome=failure.code if failure else "ok",
                               credits=fmt(self.call.charged))
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

    def close(self, app: Any) -> None:
        """The response is closed (by the server, after the stream or instead of it)."""
        self.upstream.stop()
        if self.call.charged is None:
            with app.app_context():
                self._settle()
            if not self.started:
                self.access.update(outcome="client_closed", credits=fmt(self.call.charged))

    def _all_finished(self) -> bool:
        return bool(self.choices) and all(s.finished for s in self.choices.values())

    def _current_usage(self) -> dict[str, Any] | None:
        if self.usage is None and self.relayed_chars:
            # No usage from upstream (cut short, or it never reports it): an estimate of what
            # was relayed, which is also what the client is told.
            return _estimated_usage(self.call, self.relayed_chars)
        return self.usage

    def accrued(self) -> Decimal:
        """What this stream has earned so far (read by the lease keeper's thread)."""
        usage = self._current_usage()
        return charge(usage_counts(usage), self.call.model) if usage else ZERO

    def _settle(self) -> None:
        call = self.call
        if call.charged is not None:
            return
        try:
            self.usage = self._current_usage()
            charged = call.settle(usage_counts(self.usage) if self.usage else None)
            if self.usage is not None:
                self.usage.update(call.credits_fields(charged))
            if call.policy.reasoning_echo:
                memos.remember(call.account_id, {
                    tool_id: "".join(state.reasoning)
                    for state in self.choices.values() if state.reasoning
                    for tool_id in state.tool_call_ids
                })
        except Exception:
            # Never out of a stream's teardown: the hold is settled (or handed to the lease
            # keeper) by call.settle before anything here can fail.
            log.exception("stream settlement follow-up failed",
                          extra={"fields": {"hold_id": call.hold.id if call.hold else None}})
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
