"""Fixtures shared by the end-to-end tests (real processes on loopback)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import need_service

# Redis for Redis-mode tests: a database of its own, flushed before and after use.
REDIS_URL = os.environ.get("BEATRA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_available(url: str = REDIS_URL) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A flushed Redis database (skips without Redis; fails when BEATRA_REQUIRE_SERVICES=1)."""
    import redis

    need_service("redis", redis_available(), REDIS_URL)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()
