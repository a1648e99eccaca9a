"""Per-key rate limits: requests per minute with X-RateLimit-* headers and 429 + Retry-After,
concurrent streams, per-key settings from the CLI over catalog defaults, and the Redis backend
(shared counts) when Redis is available."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
import responses
import yaml

from beatra.ratelimit.backends import MemoryLimiter, RedisLimiter
from tests.conftest import TEST_CATALOG, need_service
from tests.unit.chat_helpers import UP_A, chunk, sse, user

MODELS = "/v1/models"
# 20 s into a one-minute window: every request of a test counts in the same window.
PINNED = 1_800_000_020.0


def _pinned() -> float:
    return PINNED


@pytest.fixture(autouse=True)
def _pin_the_clock(monkeypatch):
    """Every limiter built by an app in these tests counts in the PINNED window."""
    monkeypatch.setattr("beatra.ratelimit.hooks.MemoryLimiter",
                        lambda: MemoryLimiter(clock=_pinned))


def _limits(app, key_id, *args):
    out = app.test_cli_runner().invoke(args=["keys", "limits", key_id, *args, "--json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def test_requests_per_minute_per_key(app, client, make_account):
    a, b = make_account(), make_account()
    assert _limits(app, a.key_id, "--rpm", "3") == {"key_id": a.key_id, "rpm": 3,
                                                     "streams": None}
    seen = [client.get(MODELS, headers=a.headers) for _ in range(3)]
    assert [r.status_code for r in seen] == [200, 200, 200]
    assert [r.headers["X-RateLimit-Remaining"] for r in seen] == ["2", "1", "0"]
    assert all(r.headers["X-RateLimit-Limit"] == "3" for r in seen)
    limited = client.get(MODELS, headers=a.headers)
    assert limited.status_code == 429
    err = limited.get_json()["error"]
    assert err["code"] == "rate_limited" and err["retryable"] is True
    assert limited.headers["Retry-After"] == "40"  # the pinned window ends in 40 s
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert limited.headers["X-RateLimit-Reset"] == "40"
    # Another key is counted on its own; an unlimited key carries no limit headers.
    other = client.get(MODELS, headers=b.headers)
    assert other.status_code == 200 and "X-RateLimit-Limit" not in other.headers


def test_cli_rejects_bad_values_and_resets_to_default(app, account):
    runner = app.test_cli_runner()
    bad = runner.invoke(args=["keys", "limits", account.key_id, "--rpm", "-1"])
    assert bad.exit_code != 0
    assert runner.invoke(args=["keys", "limits", "key_nope", "--rpm", "5"]).exit_code != 0
    _limits(app, account.key_id, "--rpm", "5", "--streams", "0")
    assert _limits(app, account.key_id, "--rpm", "default") == {
        "key_id": account.key_id, "rpm": None, "streams": 0}


def test_catalog_defaults_apply_and_a_key_overrides_them(make_app, make_account, tmp_path: Path):
    catalog = yaml.safe_load(TEST_CATALOG.read_text())
    catalog["rate_limits"] = {"requests_per_minute": 2}
    path = tmp_path / "limited.yaml"
    path.write_text(yaml.safe_dump(catalog))
    app = make_app(catalog_path=str(path))
    client = app.test_client()
    from beatra.accounts import service

    with app.app_context():
        acct = service.create_account("x")
        _, api_key = service.create_key(acct.id)
        key2, api_key2 = service.create_key(acct.id)
        key2_id = key2.id
    headers = {"Authorization": f"Bearer {api_key}"}
    assert [client.get(MODELS, headers=headers).status_code for _ in range(3)] == [200, 200, 429]
    _limits(app, key2_id, "--rpm", "0")  # 0 = unlimited for this key
    headers2 = {"Authorization": f"Bearer {api_key2}"}
    assert all(client.get(MODELS, headers=headers2).status_code == 200 for _ in range(5))


@responses.activate
def test_concurrent_streams_limit(app, account, ledger_ok):
    _limits(app, account.key_id, "--streams", "1")
    events = sse(chunk({"content": "Hi"}), chunk(finish="stop"))
    for _ in range(3):
        responses.post(UP_A, body=events, content_type="text/event-stream")
    body = {"model": "test-chat", "messages": [user()], "stream": True}
    client = app.test_client()
    open_stream = client.post("/v1/chat/completions", json=body, headers=account.headers,
                              buffered=False)
    assert open_stream.status_code == 200
    second = client.post("/v1/chat/completions", json=body, headers=account.headers)
    assert second.status_code == 429 and second.headers["Retry-After"] == "1"
    assert "concurrent streams" in second.get_json()["error"]["message"]
    # A non-streamed request is not a stream.
    sync_ok = client.get(MODELS, headers=account.headers)
    assert sync_ok.status_code == 200
    open_stream.get_data()
    open_stream.close()  # the slot is released when the response closes
    third = client.post("/v1/chat/completions", json=body, headers=account.headers)
    assert third.status_code == 200
    # Close it here: left to the garbage collector, its stream_with_context generator pops its
    # request context whenever it is collected, possibly inside another context (ledger_ok's).
    third.close()


def test_memory_stream_slots_expire():
    limiter = MemoryLimiter()
    assert limiter.hit("k", 0, 1, "s1", slot_ttl=0.0).stream_ok
    assert limiter.hit("k", 0, 1, "s2", slot_ttl=60).stream_ok  # s1 expired at once
    assert not limiter.hit("k", 0, 1, "s3", slot_ttl=60).stream_ok


def _redis_url() -> str:
    from tests.e2e.conftest import REDIS_URL, redis_available

    need_service("redis", redis_available(), REDIS_URL)
    return REDIS_URL


def test_redis_counts_are_shared_between_limiters():
    url = _redis_url()
    key = f"test-{uuid.uuid4().hex}"
    one, two = RedisLimiter(url, _pinned), RedisLimiter(url, _pinned)  # as two processes
    try:
        counts = [lim.hit(key, 4, 0, None, 60).count for lim in (one, two, one, two, one)]
        assert counts == [1, 2, 3, 4, 5]
        assert one.hit(key, 0, 2, "a", 60).stream_ok
        assert two.hit(key, 0, 2, "b", 60).stream_ok
        assert not one.hit(key, 0, 2, "c", 60).stream_ok
        two.release(key, "a")
        assert one.hit(key, 0, 2, "c", 60).stream_ok
        assert not two.hit(key, 0, 2, "d", 60).stream_ok
    finally:
        for name in one.client.scan_iter(f"{RedisLimiter.PREFIX}{key}:*"):
            one.client.delete(name)


def test_redis_concurrent_hits_never_exceed_the_limit():
    url = _redis_url()
    key = f"test-{uuid.uuid4().hex}"
    limiter = RedisLimiter(url, _pinned)
    allowed: list[bool] = []
    lock = threading.Lock()

    def hit() -> None:
        ok = limiter.hit(key, 10, 0, None, 60).count <= 10
        with lock:
            allowed.append(ok)

    threads = [threading.Thread(target=hit) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert allowed.count(True) == 10 and len(allowed) == 30
    finally:
        for name in limiter.client.scan_iter(f"{RedisLimiter.PREFIX}{key}:*"):
            limiter.client.delete(name)


