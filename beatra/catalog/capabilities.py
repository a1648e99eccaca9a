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
        Capability(
            "images.generations",
            "/v1/images/generations",
            "text",
            "image",
            "async",
            "Images from a text prompt (GPT Image), as a task.",
            frozenset({"openai"}),
        ),
        Capability(
            "images.image_to_image",
            "/v1/images/image-to-image",
            "image",
            "image",
            "async",
            "Images from 1-16 input images and a prompt (GPT Image edits), as a task.",
            frozenset({"openai"}),
        ),
        Capability(
            "music.text_to_music",
            "/v1/music/text-to-music",
            "text",
            "audio",
            "async",
            "Songs from a prompt and optional lyrics (MiniMax music, Suno), as a task.",
            frozenset({"minimax", "sunoapi"}),
        ),
        Capability(
            "music.reference_audio_to_music",
            "/v1/music/reference-audio-to-music",
            "audio",
            "audio",
            "async",
            "Songs from a reference audio and a prompt (covers), as a task.",
            frozenset({"minimax", "sunoapi"}),
        ),
    )
}
