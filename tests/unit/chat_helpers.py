"""Builders for OpenAI-style upstream replies used with `responses`."""

from __future__ import annotations

import json
from typing import Any

UP_A = "http://upstream-a.test/v1/chat/completions"
UP_B = "http://upstream-b.test/v1/chat/completions"


def completion(content: str | None = "Hi there", *, usage: dict | None = None,
               message: dict | None = None, n: int = 1, finish: str = "stop") -> dict:
    msg = {"role": "assistant", "content": content, **(message or {})}
    return {
        "id": "chatcmpl-up1", "object": "chat.completion", "created": 1700000001,
        "model": "up-chat-2024", "system_fingerprint": "fp_up",
        "choices": [{"index": i, "message": dict(msg), "finish_reason": finish,
                     "logprobs": None} for i in range(n)],
        "usage": usage if usage is not None else {"prompt_tokens": 10, "completion_tokens": 5,
                                                  "total_tokens": 15},
    }


def chunk(delta: dict | None = None, *, finish: str | None = None, index: int = 0,
          usage: dict | None = None, choices: bool = True) -> dict:
    body: dict[str, Any] = {"id": "chatcmpl-s1", "object": "chat.completion.chunk",
                            "created": 1700000002, "model": "up-chat-2024",
                            "obfuscation": "x9"}
    body["choices"] = ([{"index": index, "delta": delta or {}, "finish_reason": finish}]
                       if choices else [])
    if usage is not None:
        body["usage"] = usage
    return body


def sse(*events: dict | str, done: bool = True) -> bytes:
    out = []
    for event in events:
        out.append(f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def parse_sse(body: bytes) -> list[tuple[str | None, Any]]:
    """[(event_name, parsed data or '[DONE]')] from an SSE body."""
    events = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        text = "\n".join(data)
        events.append((name, text if text == "[DONE]" else json.loads(text)))
    return events


def user(text: str = "Hello") -> dict:
    return {"role": "user", "content": text}
