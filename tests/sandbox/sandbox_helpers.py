"""Plain helpers for the sandbox tests (importable because pytest puts this dir on sys.path)."""

from __future__ import annotations

import json
from typing import Any

AUTH = {"Authorization": "Bearer sk-sandbox"}


def parse_sse(raw: str) -> list[Any]:
    """Events of an SSE body: parsed JSON, the string "[DONE]", or raw text if not JSON."""
    assert raw == "" or raw.endswith("\n\n"), "every event ends with a blank line"
    events: list[Any] = []
    for block in raw.split("\n\n"):
        if not block:
            continue
        assert block.startswith("data: "), block
        data = block[len("data: "):]
        if data == "[DONE]":
            events.append("[DONE]")
            continue
        try:
            events.append(json.loads(data))
        except json.JSONDecodeError:
            events.append(data)
    return events


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def content_of(events: list[Any], index: int = 0, field: str = "content") -> str:
    """Concatenated delta ``field`` of one choice across stream chunks."""
    parts = []
    for e in events:
        if isinstance(e, dict):
            for c in e.get("choices", []):
                if c["index"] == index and c["delta"].get(field):
                    parts.append(c["delta"][field])
    return "".join(parts)
