"""Every chat hold settles, whatever ends the call: clients that hang up at each point of a
stream, upstream errors mid-stream, a worker killed with streams in flight. Each test ends with
the ledger audit and no open hold (`credits holds`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import openai
import pytest
import requests

from tests.e2e.stack import Stack, chat_stack

pytestmark = pytest.mark.e2e

REAP_SECONDS = 2.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    yield from chat_stack(tmp_path_factory, "chat-money", BEATRA_SSE_PING_SECONDS="0.2",
                          BEATRA_HOLD_REAP_SECONDS=str(REAP_SECONDS),
                          BEATRA_TASK_SWEEP_SECONDS="0.5")


def _account(stack: Stack, streams: int | None = None) -> tuple[str, str]:
    return stack.create_account("100", name="money", streams=streams)


def _holds(stack: Stack, account_id: str | None = None) -> list[dict]:
    args = ["credits", "holds", "--json"] + (["--account", account_id] if account_id else [])
    return json.loads(stack.cli(*args).stdout)["holds"]


def _settled(stack: Stack, account_id: str, timeout: float = 10) -> list[dict]:
    """The account's ledger once it has no open hold (fails after `timeout`)."""
    deadline = time.monotonic() + timeout
    while _holds(stack, account_id):
        assert time.monotonic() < deadline, f"holds still open: {_holds(stack, account_id)}"
        time.sleep(0.2)
    return stack.ledger(account_id)


def _assert_clean(stack: Stack) -> None:
    assert stack.audit_ok(), stack.cli("credits", "audit", check=False).output
    assert _holds(stack) == []
    log = (stack.dir / "gateway.log").read_text()
    assert "reentrant call" not in log
    assert "unhandled error" not in log


def _body(prompt: str, stream: bool = True) -> dict:
    return {"model": "gpt-4o-mini", "stream": stream,
            "messages": [{"role": "user", "content": prompt}]}


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_sdk_close_mid_stream_settles_and_frees_the_stream_slot(stack):
    account_id, key = _account(stack, streams=1)
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0, timeout=30)
    for _ in range(3):  # each later stream needs the slot the previous one held
        stream = client.chat.completions.create(
            model="gpt-4o-mini", stream=True,
            messages=[{"role": "user", "content": "Hi [sandbox:chunks=10,chunk_delay=0.3]"}])
        it = iter(stream)
        next(it)
        next(it)
        stream.close()
        ledger = _settled(stack, account_id)
        kinds = [row["kind"] for row in ledger[:3]]
        assert kinds == ["capture", "release", "reserve"]
        assert Decimal(ledger[0]["amount"]) < 0  # what was relayed is billed
        assert ledger[0]["hold_id"] == ledger[2]["hold_id"]
    _assert_clean(stack)


def test_client_gone_before_the_first_byte_is_charged_nothing(stack):
    account_id, key = _account(stack)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{stack.url}/v1/chat/completions", headers=_headers(key),
                      json=_body("Hi [sandbox:delay=2]"), timeout=(5, 0.1))
    ledger = _settled(stack, account_id)
    assert [row["kind"] for row in ledger[:3]] == ["capture", "release", "reserve"]
    assert Decimal(ledger[0]["amount"]) == 0
    _assert_clean(stack)


def test_close_during_pings_settles(stack):
    account_id, key = _account(stack)
    with requests.post(f"{stack.url}/v1/chat/completions", headers=_headers(key),
                       json=_body("Hi [sandbox:chunks=3,chunk_delay=3]"), stream=True,
                       timeout=10) as resp:
        assert resp.status_code == 200
        seen = []
        for line in resp.iter_lines():
            seen.append(line)
            if seen.count(b": ping") >= 2:
                break
    ledger = _settled(stack, account_id)
    assert ledger[0]["kind"] == "capture"
    _assert_clean(stack)


def test_slow_first_byte_starts_the_stream_with_pings(stack):
    _, key = _account(stack)
    started = time.monotonic()
    with requests.post(f"{stack.url}/v1/chat/completions", headers=_headers(key),
                       json=_body("Hi [sandbox:delay=1,chunks=2]"), stream=True,
                       timeout=10) as resp:
        assert resp.status_code == 200
        lines = [line for line in resp.iter_lines() if line]
    assert time.monotonic() - started >= 1
    assert lines[0] == b": ping" and lines[-1] == b"data: [DONE]"
    assert any(line.startswith(b"data: {") for line in lines)


def test_failure_after_pings_began_is_an_error_event(stack):
    account_id, key = _account(stack)
    resp = requests.post(f"{stack.url}/v1/chat/completions", headers=_headers(key),
                         json=_body("Hi [sandbox:delay=0.6,fail=500]"), timeout=10)
    assert resp.status_code == 200
    events = resp.text.split("\n\n")
    assert events[0] == ": ping"
    error = next(e for e in events if e.startswith("event: error"))
    assert json.loads(error.split("data: ", 1)[1])["error"]["code"] == "upstream_error"
    assert events[-2] == "data: [DONE]"
    assert Decimal(_settled(stack, account_id)[0]["amount"]) == 0
    _assert_clean(stack)


def test_mid_stream_upstream_error_always_ends_with_error_event_and_done(stack):
    account_id, key = _account(stack)

    def one() -> str:
        return requests.post(f"{stack.url}/v1/chat/completions", headers=_headers(key),
                             json=_body("Hi [sandbox:chunks=10,chunk_delay=0.1,error_after=4]"),
                             timeout=30).text

    bodies = [one() for _ in range(8)]
    with __import__("concurrent.futures").futures.ThreadPoolExecutor(6) as pool:
        bodies += list(pool.map(lambda _: one(), range(12)))
    for text in bodies:
        assert "event: error" in text and text.endswith("data: [DONE]\n\n"), text[-300:]
    _settled(stack, account_id)
    _assert_clean(stack)


def test_one_account_failing_cannot_take_the_model_offline(stack):
    _, bad_key = _account(stack)
    _, good_key = _account(stack)
    node_style = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=bad_key, max_retries=2,
                               timeout=30)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            node_style.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "[sandbox:fail=500]"}])
    good = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=good_key, max_retries=0)
    assert "gpt-4o-mini" in [m.id for m in good.models.list()]
    resp = good.chat.completions.create(model="gpt-4o-mini",
                                        messages=[{"role": "user", "content": "hello"}])
    assert resp.choices[0].message.content
    _assert_clean(stack)


def test_model_options_cannot_lift_the_bill(stack):
    _, key = _account(stack)
    for field, value in (("max_completion_tokens", 5000), ("n", 5), ("model", "o4-mini"),
                         ("messages", []), ("stream", True), ("max_output_tokens", 9)):
        resp = requests.post(f"{stack.url}/v1/chat/completions", headers=_headers(key),
                             json={**_body("hi", stream=False), "max_tokens": 1,
                                   "model_options": {field: value}}, timeout=10)
        assert resp.status_code == 422, field
        assert resp.json()["error"]["param"] == f"/model_options/{field}"
    _assert_clean(stack)


def _worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split()]


def test_kill_9_of_a_worker_mid_stream_is_reaped_for_what_was_relayed(stack):
    account_id, key = _account(stack)
    master = stack.procs["gateway"].pid
    [worker] = _worker_pids(master)
    got: list[bytes] = []
    cut: list[Exception] = []
    reading = threading.Event()

    def stream() -> None:
        try:
            with requests.post(f"{stack.url}/v1/chat/completions", headers=_headers(key),
                               json=_body("Hi [sandbox:chunks=40,chunk_delay=0.5,tokens=400]"),
                               stream=True, timeout=30) as resp:
                for line in resp.iter_lines():
                    if line.startswith(b"data: {"):
                        got.append(line)
                        if len(got) == 3:
                            reading.set()
        except (OSError, requests.RequestException) as exc:
            cut.append(exc)  # the worker died under it: that is the point of this test

    reader = threading.Thread(target=stream)
    reader.start()
    assert reading.wait(20)
    time.sleep(REAP_SECONDS / 2)  # at least one lease renewal recorded an accrual
    os.kill(worker, signal.SIGKILL)
    reader.join(30)
    assert len(got) < 40, cut  # the stream was cut, not finished
    ledger = _settled(stack, account_id, timeout=REAP_SECONDS * 6 + 10)
    capture, release, reserve = ledger[:3]
    assert (capture["kind"], release["kind"], reserve["kind"]) == ("capture", "release",
                                                                   "reserve")
    assert capture["hold_id"] == reserve["hold_id"]
    assert (capture["reason"] or "").startswith("hold lease expired"), ledger[:3]
    assert Decimal(capture["amount"]) < 0  # billed what its last renewal recorded
    assert stack.audit_ok()
    assert _holds(stack) == []
