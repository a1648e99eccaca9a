"""The test suite never wipes what it did not create: the Postgres database must say it is for
tests, and a Redis database is flushed only once the suite has marked it as its own."""

from __future__ import annotations

import pytest

from tests.conftest import refuse_database
from tests.e2e.conftest import MARKER_KEY, claim_redis, flush_claimed


@pytest.mark.parametrize(("url", "force", "refused"), [
    ("postgresql+psycopg://postgres@127.0.0.1:5432/test", False, False),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/sdkdocs_test", False, False),
    ("postgresql://u:p@db.example/beatra_TEST", False, False),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/beatra", False, True),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/test_data", False, True),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/", False, True),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/beatra", True, False),
])
def test_only_a_database_named_for_tests_is_wiped(url, force, refused):
    reason = refuse_database(url, force)
    assert (reason is not None) == refused
    if refused:
        assert "BEATRA_TEST_DATABASE_FORCE=1" in reason


class FakeRedis:
    """The four calls the guard makes, on a dict."""

    def __init__(self, data: dict[str, str] | None = None) -> None:
        self.data = dict(data or {})

    def exists(self, key: str) -> int:
        return int(key in self.data)

    def dbsize(self) -> int:
        return len(self.data)

    def set(self, key: str, value: str) -> None:
        self.data[key] = value

    def flushdb(self) -> None:
        self.data.clear()


def test_an_empty_redis_database_is_marked_then_flushed():
    client = FakeRedis()
    claim_redis(client)
    client.set("dramatiq:queue", "x")
    flush_claimed(client)
    assert list(client.data) == [MARKER_KEY]
    flush_claimed(client, keep_mark=False)
    assert client.data == {}


def test_a_redis_database_with_foreign_keys_is_never_flushed():
    client = FakeRedis({"someone:else": "precious"})
    with pytest.raises((pytest.skip.Exception, pytest.fail.Exception)):
        claim_redis(client)
    with pytest.raises(RuntimeError, match="refusing to flush"):
        flush_claimed(client)
    assert client.data == {"someone:else": "precious"}
