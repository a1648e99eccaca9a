"""Sortable unique ids (ULID: 48-bit ms timestamp + 80 random bits, Crockford base32).

Monotonic within a process: two ids made in the same millisecond sort in the order they were
made (the random part of the second is the first's plus one), which keyset pagination on task
ids relies on.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_MASK = (1 << 80) - 1
_lock = threading.Lock()
_last: tuple[int, int] = (0, 0)


def ulid(at: datetime | None = None) -> str:
    """A ULID whose time part is `at` (default: now)."""
    global _last
    ms = int((at or datetime.now()).timestamp() * 1000)
    with _lock:
        last_ms, last_rand = _last
        rand = (last_rand + 1 if ms == last_ms else int.from_bytes(os.urandom(10), "big"))
        rand &= _RANDOM_MASK
        _last = (ms, rand)
    value = (ms << 80) | rand
    out = []
    for _ in range(26):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str, at: datetime | None = None) -> str:
    return f"{prefix}_{ulid(at)}"
