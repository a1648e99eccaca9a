"""The capabilities beatra has built. A catalog may only name these."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capability:
    name: str
    endpoint: str
    input_modality: str
    output_modality: str
    execution_mode: str  # sync | stream | async
    description: str
    provider_kinds: frozenset[str]


CAPABILITIES: dict[str, Capability] = {
    c.name: c
    for c in (
        Capability(
            "chat.completions",
            "/v1/chat/completions",
            "text",
            "text",
            "stream",
            "OpenAI-compatible chat completions, sync or streamed (SSE).",
            frozenset({"openai"}),
        ),
    )
}
