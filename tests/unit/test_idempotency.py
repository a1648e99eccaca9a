"""Idempotency-Key on mutating POSTs: one task and one charge for 20 parallel retries, identical
replays, 422 for a reused key with another body, 409 while the first request runs, streamed chat
replayed as the same SSE bytes."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import responses
from sqlalchemy import func, select

from beatra.billing.models import LedgerEntry
from beatra.extensions import db
from beatra.tasks.models import Task
from tests.unit.chat_helpers import UP_A, chunk, completion, sse, user
from tests.unit.tasks_helpers import FAST, balance, hold_messages

GEN = "/v1/images/generations"
BODY = {"model": "gpt-image-2", "prompt": "a red fox"}


@pytest.fixture
def images_app(make_app):
    return make_app(**FAST)


def _post(client, account, key, body=BODY, path=GEN):
    return client.post(path, json=body, headers={**account.headers, "Idempotency-Key": key})


def _counts(app, account):
    with app.app_context():
        tasks = db.session.scalar(select(func.count()).select_from(Task)
                                  .where(Task.account_id == account.account_id))
        reserves = db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.account_id == account.account_id, LedgerEntry.kind == "reserve"))
        return tasks, reserves


def test_twenty_parallel_posts_create_one_task_and_one_charge(images_app, make_account,
                                                              monkeypatch, ledger_ok):
    hold_messages(images_app, monkeypatch)
    account = make_account()
    start = threading.Barrier(20)
    results: list[tuple[int, dict, dict]] = []
    lock = threading.Lock()

    def worker() -> None:
        client = images_app.test_client()
        start.wait()
        resp = _post(client, account, "key-parallel")
        with lock:
            results.append((resp.status_code, resp.get_json(), dict(resp.headers)))

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _counts(images_app, account) == (1, 1)
    statuses = sorted(status for status, _, _ in results)
    assert set(statuses) <= {202, 409} and 202 in statuses
    task_ids = {body["task_id"] for status, body, _ in results if status == 202}
    assert len(task_ids) == 1
    for status, body, headers in results:
        if status == 409:
            assert body["error"]["code"] == "idempotency_conflict"
            assert body["error"]["retryable"] is True and headers["Retry-After"] == "1"
    # Once the first finished, every retry is a replay of the same task.
    replay = _post(images_app.test_client(), account, "key-parallel")
    assert replay.status_code == 202 and replay.get_json()["task_id"] in task_ids
    assert _counts(images_app, account) == (1, 1)


def test_replay_is_identical_and_charges_nothing(images_app, account, monkeypatch, ledger_ok):
    hold_messages(images_app, monkeypatch)
    client = images_app.test_client()
    first = _post(client, account, "k1")
    after_first = balance(client, account)
    # Key order and whitespace do not change the fingerprint.
    second = _post(client, account, "k1", body={"prompt": "a red fox", "model": "gpt-image-2"})
    assert first.status_code == second.status_code == 202
    assert first.get_data() == second.get_data()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert balance(client, account) == after_first
    assert _counts(images_app, account) == (1, 1)


def test_same_key_different_body_is_refused(images_app, account, monkeypatch, ledger_ok):
    hold_messages(images_app, monkeypatch)
    client = images_app.test_client()
    assert _post(client, account, "k2").status_code == 202
    resp = _post(client, account, "k2", body={**BODY, "prompt": "a blue fox"})
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["code"] == "idempotency_key_reused" and err["param"] == "/Idempotency-Key"
    assert _counts(images_app, account) == (1, 1)


def test_keys_are_scoped_per_account_and_endpoint(images_app, make_account, monkeypatch,
                                                  ledger_ok):
    hold_messages(images_app, monkeypatch)
    client = images_app.test_client()
    a, b = make_account(), make_account()
    ta = _post(client, a, "shared").get_json()["task_id"]
    tb = _post(client, b, "shared").get_json()["task_id"]
    assert ta != tb
    cancel = client.post(f"/v1/tasks/{ta}/cancel", json={},
                         headers={**a.headers, "Idempotency-Key": "shared"})
    assert cancel.status_code == 202  # another endpoint: its own key space


def test_in_flight_duplicate_gets_409(images_app, account, monkeypatch, ledger_ok):
    from beatra.images import service as images_service

    hold_messages(images_app, monkeypatch)
    entered, release = threading.Event(), threading.Event()
    real = images_service.submit_text_to_image

    def slow(*args, **kwargs):
        entered.set()
        assert release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(images_service, "submit_text_to_image", slow)
    results = {}

    def first():
        results["first"] = _post(images_app.test_client(), account, "k3")

    t = threading.Thread(target=first)
    t.start()
    assert entered.wait(30)
    second = _post(images_app.test_client(), account, "k3")
    release.set()
    t.join()
    assert second.status_code == 409
    assert second.get_json()["error"]["code"] == "idempotency_conflict"
    assert results["first"].status_code == 202
    assert _counts(images_app, account) == (1, 1)


def test_failures_a_retry_should_redo_are_not_stored(images_app, make_account, monkeypatch,
                                                     ledger_ok):
    hold_messages(images_app, monkeypatch)
    client = images_app.test_client()
    poor = make_account(credits="0")
    assert _post(client, poor, "k4").status_code == 402
    with images_app.app_context():
        from beatra.billing import wallet

        wallet.grant(poor.account_id, Decimal("100"), reason="top up")
    resp = _post(client, poor, "k4")
    assert resp.status_code == 202 and "Idempotent-Replayed" not in resp.headers


def test_invalid_key_is_422_and_changes_nothing(images_app, account, monkeypatch, ledger_ok):
    hold_messages(images_app, monkeypatch)
    client = images_app.test_client()
    for key in ("", "x" * 256, "caf\u00e9"):
        resp = client.post(GEN, json=BODY, headers={**account.headers,
                                                    "Idempotency-Key": key.encode().decode(
                                                        "latin-1")})
        assert resp.status_code == 422, key
        assert resp.get_json()["error"]["param"] == "/Idempotency-Key"
    assert _counts(images_app, account) == (0, 0)


def test_validation_errors_are_replayed(images_app, account):
    client = images_app.test_client()
    bad = {"model": "gpt-image-2"}
    first = _post(client, account, "k5", body=bad)
    second = _post(client, account, "k5", body=bad)
    assert first.status_code == second.status_code == 422
    assert second.headers["Idempotent-Replayed"] == "true"


@responses.activate
def test_sync_chat_replay_calls_upstream_once(client, account, ledger_ok):
    responses.post(UP_A, json=completion("Hi"))
    body = {"model": "test-chat", "messages": [user()]}
    first = _post(client, account, "c1", body=body, path="/v1/chat/completions")
    after = balance(client, account)
    second = _post(client, account, "c1", body=body, path="/v1/chat/completions")
    assert first.status_code == second.status_code == 200
    assert first.get_data() == second.get_data() and len(responses.calls) == 1
    assert balance(client, account) == after


@responses.activate
def test_streamed_chat_is_replayed_as_the_same_sse_bytes(client, account, ledger_ok):
    responses.post(UP_A, body=sse(chunk({"content": "Hel"}), chunk({"content": "lo"}),
                                  chunk(finish="stop"),
                                  chunk(usage={"prompt_tokens": 2, "completion_tokens": 2,
                                               "total_tokens": 4}, choices=False)),
                   content_type="text/event-stream")
    body = {"model": "test-chat", "messages": [user()], "stream": True}
    first = _post(client, account, "s1", body=body, path="/v1/chat/completions")
    first_bytes = first.get_data()
    after = balance(client, account)
    second = _post(client, account, "s1", body=body, path="/v1/chat/completions")
    assert second.headers["Content-Type"].startswith("text/event-stream")
    assert second.get_data() == first_bytes and b"[DONE]" in first_bytes
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(responses.calls) == 1 and balance(client, account) == after


@responses.activate
def test_abandoned_stream_frees_the_key(client, account, ledger_ok):
    events = sse(chunk({"content": "Hel"}), chunk({"content": "lo"}), chunk(finish="stop"))
    responses.post(UP_A, body=events, content_type="text/event-stream")
    responses.post(UP_A, body=events, content_type="text/event-stream")
    body = {"model": "test-chat", "messages": [user()], "stream": True}
    resp = client.post("/v1/chat/completions", json=body, buffered=False,
                       headers={**account.headers, "Idempotency-Key": "s2"})
    next(iter(resp.response))  # read one event, then hang up
    resp.close()
    again = _post(client, account, "s2", body=body, path="/v1/chat/completions")
    assert again.status_code == 200 and "Idempotent-Replayed" not in again.headers
    assert len(responses.calls) == 2
