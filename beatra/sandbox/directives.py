"""Fault/behaviour directives embedded in prompt text, e.g. ``[sandbox:fail=503]``.

Tests (and humans poking the gateway) steer the sandbox through the prompt because
that is the only field every provider format shares and the gateway forwards verbatim.
Several directives may appear, either as separate brackets or comma-separated inside
one bracket: ``[sandbox:chunks=5,chunk_delay=0.1]``. Unknown names and unparsable
values are ignored (but still stripped from echoed text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields

_BRACKET = re.compile(r"\[sandbox:([^\]]*)\]", re.IGNORECASE)
_SPACES = re.compile(r"[ \t]{2,}")


@dataclass
class Directives:
    fail: int | None = None  # HTTP status to fail with
    insufficient_quota: bool = False  # from fail=insufficient_quota
    delay: float = 0.0  # seconds to sleep before responding
    truncate: bool = False
    malformed: bool = False
    error_after: int | None = None  # stream: error event after N content chunks
    chunks: int | None = None  # stream: number of content chunks
    chunk_delay: float = 0.0  # stream: seconds between chunks
    tokens: int | None = None  # exact answer length in words
    cached: int = 0  # prompt_tokens_details.cached_tokens
    policy: bool = False  # images: moderation_blocked
    minimax_code: int | None = None  # MiniMax base_resp.status_code (HTTP 200)
    suno_status: str | None = None  # terminal Suno status after PENDING
    suno_code: int | None = None  # Suno submit body code (HTTP 200)
    suno_step: float | None = None  # seconds per Suno stage
    seconds: float | None = None  # synthetic audio length


_INT = {"error_after", "chunks", "tokens", "cached", "minimax_code", "suno_code"}
_FLOAT = {"delay", "chunk_delay", "suno_step", "seconds"}
_FLAG = {"truncate", "malformed", "policy"}
_KNOWN = {f.name for f in fields(Directives)} - {"insufficient_quota"}


def _apply(d: Directives, name: str, value: str | None) -> None:
    if name not in _KNOWN:
        return
    try:
        if name in _FLAG:
            setattr(d, name, True)
        elif value is None or value == "":
            return
        elif name == "fail":
            if value.lower() == "insufficient_quota":
                d.insufficient_quota = True
            elif 400 <= int(value) <= 599:
                d.fail = int(value)
        elif name in _INT:
            setattr(d, name, max(0, int(value)))
        elif name in _FLOAT:
            setattr(d, name, max(0.0, float(value)))
        elif name == "suno_status":
            d.suno_status = value.upper()
    except ValueError:
        pass  # a malformed value is ignored, like an unknown directive


def parse(texts: Iterable[str | None]) -> Directives:
    """Collect directives from all given texts; later occurrences win."""
    d = Directives()
    for text in texts:
        if not text:
            continue
        for match in _BRACKET.finditer(text):
            for item in match.group(1).split(","):
                name, sep, value = item.strip().partition("=")
                _apply(d, name.strip().lower(), value.strip() if sep else None)
    return d


def clean(text: str | None) -> str:
    """Remove directives so they never leak into echoed text or word counts."""
    if not text:
        return ""
    return _SPACES.sub(" ", _BRACKET.sub("", text)).strip()
