"""Render a chat ``Plan`` as a ``chat.completion`` body or as an SSE chunk stream."""

from __future__ import annotations

import errno
import itertools
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .chat_build import (
    STYLE_INLINE,
    STYLE_OPENROUTER,
    STYLE_REASONING_CONTENT,
    Choice,
    Plan,
    logprob_content,
    split_inline_think,
    split_text,
)
from .directives import Directives

_ARG_PIECE = 12  # characters per streamed tool-argument fragment by default


def completion_body(plan: Plan) -> dict[str, Any]:
    choices = []
    for c in plan.choices:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": c.content,
            "refusal": None,
            "annotations": [],
        }
        if plan.style in (STYLE_REASONING_CONTENT, STYLE_OPENROUTER):
            message[plan.style] = c.reasoning
        if c.tool_call is not None:
            message["tool_calls"] = [c.tool_call]
        logprobs = None
        if plan.logprobs:
            logprobs = {"content": logprob_content(c.content or "", plan.top_logprobs),
                        "refusal": None}
        choices.append({"index": c.index, "message": message, "logprobs": logprobs,
                        "finish_reason": c.finish_reason})
    return {
        "id": plan.id,
        "object": "chat.completion",
        "created": plan.created,
        "model": plan.model,
        "choices": choices,
        "usage": plan.usage(),
        "service_tier": plan.service_tier,
        "system_fingerprint": plan.system_fingerprint,
    }


@dataclass
class _Event:
    index: int
    delta: dict[str, Any]
    finish_reason: str | None = None
    is_content: bool = False  # counts toward chunks/error_after/truncate
    logprob_text: str | None = None


def _choice_events(plan: Plan, c: Choice, d: Directives) -> list[_Event]:
    events = [_Event(c.index, {"role": "assistant", "content": ""})]
    if plan.style in (STYLE_REASONING_CONTENT, STYLE_OPENROUTER):
        # DeepSeek-style deltas carry the other field as explicit null.
        for piece in split_text(c.reasoning, None):
            events.append(_Event(c.index, {"content": None, plan.style: piece}))
    if plan.style == STYLE_INLINE and d.chunks is None:
        pieces = split_inline_think(c.content or "")
    else:
        pieces = split_text(c.content or "", d.chunks)
    for piece in pieces:
        delta: dict[str, Any] = {"content": piece}
        if plan.style == STYLE_REASONING_CONTENT:
            delta["reasoning_content"] = None
        events.append(_Event(c.index, delta, is_content=True,
                             logprob_text=piece if plan.logprobs else None))
    if c.tool_call is not None:
        fn = c.tool_call["function"]
        first = {"index": 0, "id": c.tool_call["id"], "type": "function",
                 "function": {"name": fn["name"], "arguments": ""}}
        events.append(_Event(c.index, {"tool_calls": [first]}, is_content=True))
        args = fn["arguments"]
        if d.chunks:
            arg_pieces = split_text(args, d.chunks)
        else:
            arg_pieces = [args[i:i + _ARG_PIECE] for i in range(0, len(args), _ARG_PIECE)]
        for piece in arg_pieces:
            events.append(_Event(c.index, {"tool_calls": [
                {"index": 0, "function": {"arguments": piece}}]}, is_content=True))
    events.append(_Event(c.index, {}, finish_reason=c.finish_reason))
    return events


def _interleave(per_choice: list[list[_Event]]) -> list[_Event]:
    """Round-robin over choices, as OpenAI does for n > 1."""
    merged = itertools.chain.from_iterable(itertools.zip_longest(*per_choice))
    return [e for e in merged if e is not None]


def sse(payload: Any) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(
        payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def stream_events(
    plan: Plan, d: Directives, include_usage: bool, obfuscate: bool
) -> Iterator[bytes]:
    """Yield SSE frames. Precomputed fully so no request context is needed while streaming."""
    events = _interleave([_choice_events(plan, c, d) for c in plan.choices])
    total = sum(e.is_content for e in events)
    cut_at = max(1, total // 2)  # truncate point: mid-way, after at least one piece
    garbage_at = total // 2
    token_pos = {c.index: 0 for c in plan.choices}

    def chunk(choices: list[dict[str, Any]], usage: Any = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": plan.id, "object": "chat.completion.chunk", "created": plan.created,
            "model": plan.model, "service_tier": plan.service_tier,
            "system_fingerprint": plan.system_fingerprint, "choices": choices,
        }
        if include_usage:
            body["usage"] = usage
        if obfuscate:
            body["obfuscation"] = secrets.token_urlsafe(8)[: 1 + secrets.randbelow(10)]
        return body

    sent = 0
    for n, event in enumerate(events):
        if n and d.chunk_delay:
            time.sleep(d.chunk_delay)
        if event.is_content:
            if d.error_after is not None and sent >= d.error_after:
                yield sse({"error": {"message": "The server had an error while processing "
                                     "your request (sandbox error_after).",
                                     "type": "server_error", "param": None, "code": None}})
                return
            if d.truncate and sent >= cut_at:
                # pywsgi closes the socket silently on ECONNRESET: no terminating chunk,
                # exactly like an upstream dying mid-stream.
                raise ConnectionResetError(errno.ECONNRESET, "sandbox truncate directive")
            if d.malformed and sent == garbage_at:
                yield b'data: {"id": "' + plan.id.encode() + b'", "choices": [{"delta": \n\n'
        logprobs = None
        if event.logprob_text is not None:
            content = logprob_content(event.logprob_text, plan.top_logprobs,
                                      token_pos[event.index])
            token_pos[event.index] += len(content)
            logprobs = {"content": content, "refusal": None}
        yield sse(chunk([{"index": event.index, "delta": event.delta, "logprobs": logprobs,
                          "finish_reason": event.finish_reason}]))
        sent += event.is_content
    if include_usage:
        yield sse(chunk([], plan.usage()))
    yield sse("[DONE]")
