"""API keys that passed a check recently, per process: a request's key lookup without a trip to
the database.

An entry lives for at most `seconds` (Settings.key_cache_seconds, BEATRA_KEY_CACHE_SECONDS,
default 1; 0 turns the cache off). Revoking or changing a key through beatra.accounts.service
forgets it here at once; a process that did not make the change (another gunicorn worker, while
the CLI revokes) sees it within `seconds`. Expiry is checked on every use, so an expiring key
stops at its time. Only keys that passed are kept, under the SHA-256 of the presented secret
(what the database stores), never the secret itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from beatra.accounts.caller import Caller

MAX_ENTRIES = 10_000  # past this the cache starts over (a key spray cannot grow it: misses
# are never kept)


@dataclass(frozen=True)
class Entry:
    caller: Caller
    expires_at: datetime | None
    checked: float  # time.monotonic() of the database read


_entries: dict[str, Entry] = {}


def recall(digest: str, seconds: float) -> Entry | None:
    entry = _entries.get(digest)
    if entry is None or time.monotonic() - entry.checked > seconds:
        return None
    return entry


def remember(digest: str, caller: Caller, expires_at: datetime | None) -> None:
    if len(_entries) >= MAX_ENTRIES:
        _entries.clear()
    _entries[digest] = Entry(caller, expires_at, time.monotonic())


def forget(key_id: str) -> None:
    """Drop a key whose row changed (revoked, new limits, new expiry)."""
    for digest, entry in list(_entries.items()):
        if entry.caller.key_id == key_id:
            _entries.pop(digest, None)


def clear() -> None:
    _entries.clear()
