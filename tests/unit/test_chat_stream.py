"""Streaming relay: SSE framing, usage handling, reasoning in deltas, mid-stream failures."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import responses

from beatra.billing import wallet
from tests.unit.chat_helpers import UP_A, UP_B, chunk, parse_sse, sse, user

CHAT = "/v1/chat/completions"
USAGE = {"prompt_tokens": 20, "completion_tokens": 6, "total_tokens": 26}


def stream(client, account, **extra):
    body = {"model": "test-chat", "messages": [user()], "stream": True, **extra}
    resp = client.post(CHAT, json=body, headers=account.headers)
    return resp, parse_sse(resp.get_data())


def data_events(events):
    return [d for name, d in events if name is None and d != "[DONE]"]


def text_of(events, key="content"):
    return "".join(c["choices"][0]["delta"].get(key) or "" for c in data_events(events)
                   if c["choices"])


def upstream_stream(*chunks, done=True):
    responses.post(UP_A, body=sse(*chunks, done=done), content_type="text/event-stream")


@responses.activate
def test_stream_relays_chunks_and_withholds_usage_unless_asked(app, client, account, ledger_ok):
    upstream_stream(chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}),
                    chunk({"content": "lo"}), chunk(finish="stop"),
                    chunk(usage=USAGE, choices=False))
    resp, events = stream(client, account)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert events[-1] == (None, "[DONE]")
    chunks = data_events(events)
    assert text_of(events) == "Hello"
    assert all(c["model"] == "test-chat" and "obfuscation" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)  # no usage chunk for this client
    assert all("usage" not in c for c in chunks)
    sent = json.loads(responses.calls[0].request.body)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    with app.app_context():  # billed from the upstream's usage: 20x0.001 + 6x0.002
        assert wallet.balance(account.account_id) == Decimal("100") - Decimal("0.032")


@responses.activate
def test_stream_usage_chunk_carries_credits_when_asked(client, account, ledger_ok):
    upstream_stream(chunk({"content": "Hi"}), chunk(finish="stop"),
                    chunk(usage=USAGE, choices=False))
    _, events = stream(client, account, stream_options={"include_usage": True})
    chunks = data_events(events)
    assert all(c["usage"] is None for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"]["total_tokens"] == 26
    assert last["usage"]["credits"] == "0.032"
    assert last["usage"]["credits_usd_reference"] == "0.00032"
    assert last["id"] == "chatcmpl-s1"


# Every split of every piece is tested in-process (test_chat_policy_routing); over HTTP a few
# cuts show the relay wires the splitter in: inside <think>, just after it, inside </think>,
# and after it.
@pytest.mark.parametrize("cut", [3, 7, 23, 29])
@responses.activate
def test_think_tags_split_anywhere_across_chunks(client, account, cut):
    text = "<think>plan A then B</think>\n\nFinal answer."
    upstream_stream(chunk({"content": text[:cut]}), chunk({"content": text[cut:]}),
                    chunk(finish="stop"), chunk(usage=USAGE, choices=False))
    _, events = stream(client, account)
    assert text_of(events, "reasoning_content") == "plan A then B"
    assert text_of(events) == "Final answer."


@responses.activate
def test_reasoning_field_in_deltas_becomes_reasoning_content(client, account):
    upstream_stream(chunk({"reasoning": "hmm"}), chunk({"reasoning_content": " yes"}),
                    chunk({"content": "ok"}), chunk(finish="stop"),
                    chunk(usage=USAGE, choices=False))
    _, events = stream(client, account)
    assert text_of(events, "reasoning_content") == "hmm yes"
    assert all("reasoning" not in c["choices"][0]["delta"] for c in data_events(events))


@responses.activate
def test_tool_call_fragments_pass_through(client, account):
    upstream_stream(
        chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                               "function": {"name": "get", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"q\":1}"}}]}),
        chunk(finish="tool_calls"), chunk(usage=USAGE, choices=False))
    _, events = stream(client, account, tools=[{"type": "function",
                                                "function": {"name": "get"}}])
    chunks = data_events(events)
    assert chunks[0]["choices"][0]["delta"]["tool_calls"][0]["id"] == "call_1"
    assert chunks[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] == \
        "{\"q\":1}"
    assert chunks[2]["choices"][0]["finish_reason"] == "tool_calls"


@responses.activate
def test_mid_stream_error_ends_with_error_event_and_bills_relayed(app, client, account,
                                                                  ledger_ok):
    upstream_stream(chunk({"content": "x" * 40}), {"error": {"message": "overloaded"}},
                    done=False)
    _, events = stream(client, account)
    assert events[-1] == (None, "[DONE]")
    name, err = events[-2]
    assert name == "error"
    assert err["error"]["code"] == "upstream_error" and err["error"]["retryable"] is True
    assert err["error"]["request_id"]
    with app.app_context():
        spent = Decimal("100") - wallet.balance(account.account_id)
    # No upstream usage: the 40 relayed characters (~10 tokens) plus the prompt estimate.
    assert Decimal("0.02") <= spent < Decimal("0.05")


@responses.activate
def test_truncated_stream_without_done_is_an_error_and_billed_for_what_was_relayed(
    app, client, account, ledger_ok
):
    upstream_stream(chunk({"content": "partial answer"}), done=False)
    _, events = stream(client, account)
    assert [n for n, _ in events][-2:] == ["error", None]
    with app.app_context():
        assert Decimal("0") < Decimal("100") - wallet.balance(account.account_id) < Decimal("1")


@responses.activate
def test_malformed_event_mid_stream(client, account, ledger_ok):
    upstream_stream(chunk({"content": "a"}), "{garbage", done=False)
    _, events = stream(client, account)
    assert events[-2][0] == "error"


@responses.activate
def test_stream_failure_before_first_byte_falls_back(client, account, ledger_ok):
    responses.post(UP_A, status=500, json={"error": {"message": "boom"}})
    responses.post(UP_B, body=sse(chunk({"content": "from b"}), chunk(finish="stop"),
                                  chunk(usage=USAGE, choices=False)),
                   content_type="text/event-stream")
    _, events = stream(client, account)
    assert text_of(events) == "from b"


@responses.activate
def test_stream_upstream_down_is_plain_error_response(app, client, account, ledger_ok):
    for url in (UP_A, UP_B):
        responses.post(url, status=503, json={"error": {"message": "down"}})
    resp = client.post(CHAT, json={"model": "test-chat", "messages": [user()], "stream": True},
                       headers=account.headers)
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "model_unavailable"
    with app.app_context():
        assert wallet.balance(account.account_id) == Decimal("100")


@responses.activate
def test_client_disconnect_bills_only_what_was_relayed(app, client, account, ledger_ok):
    upstream_stream(*[chunk({"content": "word "}) for _ in range(50)], chunk(finish="stop"),
                    chunk(usage={"prompt_tokens": 5, "completion_tokens": 5000,
                                 "total_tokens": 5005}, choices=False))
    resp = client.post(CHAT, json={"model": "test-chat", "messages": [user()], "stream": True},
                       headers=account.headers, buffered=False)
    it = resp.response
    next(iter(it))
    resp.close()  # the client goes away after the first event
    with app.app_context():
        spent = Decimal("100") - wallet.balance(account.account_id)
    assert Decimal(0) < spent < Decimal("0.05")  # not the 5000 tokens the upstream reported


def _db_down(times: list[int]):
    """wallet.settle that fails like an unreachable database `times[0]` times."""
    from sqlalchemy.exc import OperationalError

    real = wallet.settle

    def settle(*args, **kwargs):
        if times[0] > 0:
            times[0] -= 1
            raise OperationalError("UPDATE holds", {}, Exception("connection refused"))
        return real(*args, **kwargs)

    return settle


@responses.activate
def test_database_away_at_settle_time_is_retried(app, client, account, monkeypatch, ledger_ok):
    from beatra.billing import holds

    monkeypatch.setattr(holds, "SETTLE_BACKOFF", (0.01, 0.01, 0.01, 0.01))
    monkeypatch.setattr(holds.wallet, "settle", _db_down([3]))
    upstream_stream(chunk({"content": "hello"}), chunk(finish="stop"),
                    chunk(usage={"prompt_tokens": 5, "completion_tokens": 2,
                                 "total_tokens": 7}, choices=False))
    events = parse_sse(client.post(CHAT, json={"model": "test-chat", "messages": [user()],
                                               "stream": True}, headers=account.headers).data)
    assert events[-1] == (None, "[DONE]")
    with app.app_context():
        assert wallet.open_holds() == []
        assert wallet.balance(account.account_id) < Decimal("100")


@responses.activate
def test_database_away_longer_hands_the_settlement_to_the_keeper(app, client, account,
                                                                monkeypatch, ledger_ok):
    import time

    from beatra.billing import holds

    monkeypatch.setattr(holds, "SETTLE_BACKOFF", (0.01,))
    failures = [4]  # the request's two attempts fail, then the keeper's first two
    monkeypatch.setattr(holds.wallet, "settle", _db_down(failures))
    keeper = holds.keeper_for(app)
    monkeypatch.setattr(keeper, "interval", 0.05)
    upstream_stream(chunk({"content": "hello"}), chunk(finish="stop"),
                    chunk(usage={"prompt_tokens": 5, "completion_tokens": 2,
                                 "total_tokens": 7}, choices=False))
    events = parse_sse(client.post(CHAT, json={"model": "test-chat", "messages": [user()],
                                               "stream": True}, headers=account.headers).data)
    assert events[-1] == (None, "[DONE]")
    deadline = time.monotonic() + 5
    with app.app_context():
        while wallet.open_holds() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert wallet.open_holds() == []
        assert failures == [0]
        assert wallet.balance(account.account_id) < Decimal("100")
