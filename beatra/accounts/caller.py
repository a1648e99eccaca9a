"""Who is calling: what an API key that passed its check stands for."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    account_id: str
    key_id: str
    # The key's own rate limits (None: the catalog default; 0: unlimited).
    rpm_limit: int | None = None
    stream_limit: int | None = None
