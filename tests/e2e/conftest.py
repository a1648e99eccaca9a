"""Fixtures shared by the end-to-end tests (real processes on loopback)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import need_service

# Redis for Redis-mode tests: a database of its own, flushed before and after use, but only
# once the suite has marked it as its own (see claim_redis): never someone else's data.
REDIS_URL = os.environ.get("BEATRA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
MARKER_KEY = "beatra:test-suite:owned"
_MARKER_VALUE = "set by beatra's test suite, which flushes this database"


def redis_available(url: str = REDIS_URL) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def claim_redis(client: Any) -> None:
    """Mark the database as the suite's, if it is empty or already marked; otherwise skip
    (fail under BEATRA_REQUIRE_SERVICES=1) rather than flush keys the suite did not create."""
    if client.exists(MARKER_KEY) or client.dbsize() == 0:
        client.set(MARKER_KEY, _MARKER_VALUE)
        return
    need_service("redis", False,
                 f"{REDIS_URL} holds {client.dbsize()} keys the test suite did not create; "
                 "point BEATRA_TEST_REDIS_URL at an empty database (the suite marks it with "
                 f"the key {MARKER_KEY!r} and flushes only a marked one)")


def flush_claimed(client: Any, *, keep_mark: bool = True) -> None:
    """FLUSHDB, only on a database claim_redis marked."""
    if not client.exists(MARKER_KEY):
        raise RuntimeError(f"refusing to flush {REDIS_URL}: it lacks the test suite's marker")
    client.flushdb()
    if keep_mark:
        client.set(MARKER_KEY, _MARKER_VALUE)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A flushed Redis database (skips without Redis; fails when BEATRA_REQUIRE_SERVICES=1)."""
    import redis

    need_service("redis", redis_available(), REDIS_URL)
    client = redis.Redis.from_url(REDIS_URL)
    claim_redis(client)
    flush_claimed(client)
    try:
        yield REDIS_URL
    finally:
        flush_claimed(client, keep_mark=False)  # leaves it empty, as it was found (or marked)
        client.close()
