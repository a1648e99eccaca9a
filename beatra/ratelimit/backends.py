"""Where counts live: Redis (shared across processes, atomic via one Lua script) or memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Hit:
    count: int  # requests in this window, this one included (0 when rpm is unlimited)
    reset_seconds: int  # until the window ends
    stream_ok: bool  # a stream slot was taken or none was needed (meaningless past the rpm)


def _window(now: float) -> tuple[int, int]:
    window = int(now // WINDOW_SECONDS)
    return window, max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))


class MemoryLimiter:
    """One process's counts (embedded mode, tests): a lock and two dicts."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # wall-clock seconds; windows are aligned to it (tests pin it)
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}  # key id → (window, count)
        self._streams: dict[str, dict[str, float]] = {}  # key id → slot → expiry

    def hit(self, key_id: str, rpm: int, stream_limit: int, slot: str | None,
            slot_ttl: float) -> Hit:
        now = self.clock()
        window, reset = _window(now)
        with self._lock:
            count = 0
            if rpm > 0:
                last_window, last = self._counts.get(key_id, (window, 0))
                count = (last if last_window == window else 0) + 1
                self._counts[key_id] = (window, count)
                if count > rpm:
                    return Hit(count, reset, False)
            if slot is None or stream_limit <= 0:
                return Hit(count, reset, True)
            slots = self._streams.setdefault(key_id, {})
            for old in [s for s, expiry in slots.items() if expiry <= now]:
                del slots[old]
            if len(slots) >= stream_limit:
                return Hit(count, reset, False)
            slots[slot] = now + slot_ttl
            return Hit(count, reset, True)

    def release(self, key_id: str, slot: str) -> None:
        with self._lock:
            self._streams.get(key_id, {}).pop(slot, None)


# KEYS: the window counter, the stream set. ARGV: rpm, counter ttl, now, stream limit, slot,
# slot expiry, set ttl. Returns {count, stream_ok}. Streams are a sorted set scored by expiry,
# so a slot whose process died frees itself.
_SCRIPT = """
local count = 0
local rpm = tonumber(ARGV[1])
if rpm > 0 then
  count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
  if count > rpm then return {count, 0} end
end
local limit = tonumber(ARGV[4])
if limit > 0 and ARGV[5] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
  if redis.call('ZCARD', KEYS[2]) >= limit then return {count, 0} end
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[5])
  redis.call('EXPIRE', KEYS[2], ARGV[7])
end
return {count, 1}
"""


class RedisLimiter:
    PREFIX = "beatra:rl:"

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        import redis

        self.clock = clock  # wall-clock seconds; windows are aligned to it (tests pin it)
        self.client: Any = redis.Redis.from_url(url, socket_timeout=1.0,
                                                socket_connect_timeout=1.0)
        self._script = self.client.register_script(_SCRIPT)

    def hit(self, key_id: str, rpm: int, stream_limit: int, slot: str | None,
            slot_ttl: float) -> Hit:
        now = self.clock()
        window, reset = _window(now)
        count, ok = self._script(
            keys=[f"{self.PREFIX}{key_id}:{window}", f"{self.PREFIX}{key_id}:streams"],
            args=[rpm, WINDOW_SECONDS * 2, now, stream_limit if slot else 0, slot or "",
                  now + slot_ttl, int(slot_ttl) + 60])
        return Hit(int(count), reset, bool(ok))

    def release(self, key_id: str, slot: str) -> None:
        self.client.zrem(f"{self.PREFIX}{key_id}:streams", slot)
