"""Sync relay: upstream body, billing, fallbacks, error mapping (upstreams mocked)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests
import responses
from responses import matchers

from beatra.billing import wallet
from tests.unit.chat_helpers import UP_A, UP_B, completion, user

CHAT = "/v1/chat/completions"


def balance(app, account) -> Decimal:
    with app.app_context():
        return wallet.balance(account.account_id)


def sent_body(call_index: int = 0) -> dict:
    return json.loads(responses.calls[call_index].request.body)


@responses.activate
def test_sync_completion_bills_usage_exactly(app, client, account, ledger_ok):
    usage = {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140,
             "prompt_tokens_details": {"cached_tokens": 30},
             "completion_tokens_details": {"reasoning_tokens": 10}}
    responses.post(UP_A, json=completion("Hello!", usage=usage))
    resp = client.post(CHAT, json={"model": "test-chat", "messages": [user()]},
                       headers=account.headers)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["model"] == "test-chat"
    assert body["choices"][0]["message"]["content"] == "Hello!"
    # 70 uncached x 0.001 + 30 cached x 0.0005 + 40 output x 0.002 (reasoning priced as output)
    assert body["usage"]["credits"] == "0.165"
    assert body["usage"]["credits_usd_reference"] == "0.00165"
    assert body["usage"]["prompt_tokens"] == 100
    assert balance(app, account) == Decimal("100") - Decimal("0.165")
    assert resp.headers["Content-Type"].startswith("application/json")


@responses.activate
def test_upstream_body_passthrough_and_policy(client, account):
    responses.post(UP_A, json=completion())
    client.post(CHAT, json={
        "model": "test-chat", "messages": [user()], "max_tokens": 77, "temperature": 0.3,
        "x_vendor_flag": {"a": 1}, "model_options": {"top_k": 5}, "user": None,
    }, headers=account.headers)
    body = sent_body()
    assert body["model"] == "up-chat"
    assert body["max_completion_tokens"] == 77 and "max_tokens" not in body
    assert body["temperature"] == 0.3
    assert body["x_vendor_flag"] == {"a": 1}  # unknown top-level fields pass through
    assert body["top_k"] == 5 and "model_options" not in body
    assert "user" not in body  # nulls are not forwarded
    assert body["stream"] is False
    assert responses.calls[0].request.headers["Authorization"] == "Bearer key-a"


@responses.activate
def test_default_output_cap_is_sent(client, account):
    responses.post(UP_A, json=completion())
    client.post(CHAT, json={"model": "test-chat", "messages": [user()]},
                headers=account.headers)
    assert sent_body()["max_completion_tokens"] == 4096


@responses.activate
def test_insufficient_balance_is_402_and_calls_nothing(client, make_account, ledger_ok):
    poor = make_account(credits="0.5")  # the 4096-token output cap alone needs 8.192
    resp = client.post(CHAT, json={"model": "test-chat", "messages": [user()]},
                       headers=poor.headers)
    assert resp.status_code == 402
    err = resp.get_json()["error"]
    assert err["code"] == "insufficient_balance" and err["retryable"] is False
    assert len(responses.calls) == 0
    # A smaller cap fits the balance.
    responses.post(UP_A, json=completion())
    resp = client.post(CHAT, json={"model": "test-chat", "messages": [user()],
                                   "max_tokens": 100}, headers=poor.headers)
    assert resp.status_code == 200


@responses.activate
def test_fallback_to_second_route_bills_once(app, client, account, ledger_ok):
    responses.post(UP_A, status=503, json={"error": {"message": "overloaded"}})
    responses.post(UP_B, json=completion("from b"))
    resp = client.post(CHAT, json={"model": "test-chat", "messages": [user()]},
                       headers=account.headers)
    assert resp.status_code == 200
    assert resp.get_json()["choices"][0]["message"]["content"] == "from b"
    assert json.loads(responses.calls[1].request.body)["model"] == "up-chat-b"
    assert balance(app, account) == Decimal("100") - Decimal("0.02")  # 10x0.001 + 5x0.002


@pytest.mark.parametrize(
    ("upstream", "status", "code", "retryable"),
    [
        ({"status": 503, "json": {"error": {"message": "busy"}}}, 503, "model_unavailable", True),
        ({"status": 500, "json": {"error": {"message": "boom"}}}, 502, "upstream_error", True),
        ({"status": 502, "body": "<html>bad gateway</html>"}, 502, "upstream_error", True),
        ({"status": 429, "json": {"error": {"message": "slow down", "code": "rate_limit_exceeded"}},
          "headers": {"retry-after": "7"}}, 503, "model_unavailable", True),
        ({"status": 429, "json": {"error": {"message": "no money",
                                            "code": "insufficient_quota"}}},
         503, "model_unavailable", False),
        ({"status": 401, "json": {"error": {"message": "bad key"}}}, 503, "model_unavailable",
         False),
        ({"status": 200, "body": "{not json"}, 502, "upstream_error", True),
        ({"body": requests.ConnectionError("refused")}, 503, "model_unavailable", True),
        ({"body": requests.ReadTimeout("slow")}, 502, "upstream_error", True),
    ],
)
@responses.activate
def test_upstream_failures_map_to_envelopes_and_charge_nothing(
    app, client, account, ledger_ok, upstream, status, code, retryable
):
    for url in (UP_A, UP_B):
        responses.post(url, **upstream)
    resp = client.post(CHAT, json={"model": "test-chat", "messages": [user()]},
                       headers=account.headers)
    assert resp.status_code == status, resp.get_json()
    err = resp.get_json()["error"]
    assert (err["code"], err["retryable"]) == (code, retryable)
    assert len(responses.calls) == 2  # both routes were tried
    assert balance(app, account) == Decimal("100")
    if "retry-after" in upstream.get("headers", {}):
        assert resp.headers["Retry-After"] == "7"


@responses.activate
def test_upstream_rejection_is_422_with_its_message_and_no_fallback(app, client, account,
                                                                    ledger_ok):
    responses.post(UP_A, status=400, json={"error": {
        "message": "Unsupported parameter: 'max_tokens'", "type": "invalid_request_error",
        "param": "max_tokens", "code": "unsupported_parameter"}})
    resp = client.post(CHAT, json={"model": "test-chat", "messages": [user()]},
                       headers=account.headers)
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert "Unsupported parameter" in err["message"]
    assert err["param"] == "/max_tokens"
    assert len(responses.calls) == 1
    assert balance(app, account) == Decimal("100")


def test_model_without_configured_key_is_503(client, account):
    resp = client.post(CHAT, json={"model": "keyless-chat", "messages": [user()]},
                       headers=account.headers)
    assert resp.status_code == 503
    assert resp.get_json()["error"] == {**resp.get_json()["error"], "code": "model_unavailable",
                                         "retryable": False}


def _ask(client, who, model="test-chat"):
    return client.post(CHAT, json={"model": model, "messages": [user()]}, headers=who.headers)


@responses.activate
def test_one_account_cannot_open_a_circuit_for_everyone(client, account, make_account,
                                                        ledger_ok):
    """Failures provoked by one caller (a directive, an SDK's retries) fail over for that
    caller but never take the model away from others."""
    other = make_account()
    responses.post(UP_A, status=500, json={"error": {"message": "boom"}})
    responses.post(UP_B, status=500, json={"error": {"message": "boom"}})
    for _ in range(6):
        assert _ask(client, account).status_code == 502
    responses.replace(responses.POST, UP_A, json=completion())
    assert _ask(client, other).status_code == 200
    assert "test-chat" in [m["id"] for m in client.get("/v1/models", headers=other.headers)
                           .get_json()["data"]]


@responses.activate
def test_circuit_breaker_skips_a_failing_route_and_hides_dead_models(client, account,
                                                                     make_account, caplog):
    caplog.set_level("WARNING", logger="beatra.catalog.circuits")
    second = make_account()
    responses.post(UP_A, status=503, json={"error": {"message": "down"}})
    responses.post(UP_B, json=completion())
    for who in (account, second, account):
        assert _ask(client, who).status_code == 200  # fails over to B at once
    assert [r.message for r in caplog.records].count("circuit opened") == 1
    calls_before = len(responses.calls)
    assert _ask(client, account).status_code == 200
    assert len(responses.calls) == calls_before + 1  # route A skipped while its circuit is open

    def listed() -> list[str]:
        return [m["id"] for m in client.get("/v1/models", headers=account.headers)
                .get_json()["data"]]

    assert "test-chat" in listed()  # route B still serves it

    responses.replace(responses.POST, UP_B, status=503, json={"error": {"message": "down"}})
    for who in (account, second, account):
        _ask(client, who)
    assert "test-chat" not in listed()  # both circuits open: not servable, not listed
    resp = _ask(client, account)
    assert resp.status_code == 503 and resp.get_json()["error"]["retryable"] is True
    assert 1 <= int(resp.headers["Retry-After"]) <= 30


def test_half_open_admits_one_probe_and_closing_is_logged(caplog):
    from beatra.catalog.circuits import CircuitBreaker

    caplog.set_level("WARNING", logger="beatra.catalog.circuits")
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, open_seconds=10, clock=lambda: now[0])
    route = _route("p", "m")
    breaker.failure(route, "a")
    breaker.failure(route, "a")
    assert breaker.admit(route)  # one account alone: still closed
    breaker.failure(route, "b")
    assert not breaker.admit(route) and breaker.retry_after(route) == 10
    now[0] = 11
    assert breaker.admit(route)  # the probe
    assert not breaker.admit(route)  # everyone else waits for it
    breaker.failure(route, "a")  # failed probe: open again
    assert breaker.is_open(route)
    now[0] = 22
    assert breaker.admit(route)
    breaker.success(route)
    assert breaker.admit(route) and breaker.retry_after(route) is None
    assert [r.message for r in caplog.records if "circuit" in r.message] == [
        "circuit opened", "circuit closed"]


def _route(provider: str, model: str):
    from types import SimpleNamespace

    return SimpleNamespace(provider=SimpleNamespace(name=provider), upstream_model=model)


@responses.activate
def test_reasoning_styles_are_normalised_sync(client, account):
    responses.post(UP_A, json=completion("<think>step 1\nstep 2</think>\n\nThe answer."))
    msg = client.post(CHAT, json={"model": "test-chat", "messages": [user()]},
                      headers=account.headers).get_json()["choices"][0]["message"]
    assert msg["reasoning_content"] == "step 1\nstep 2"
    assert msg["content"] == "The answer."

    responses.replace(responses.POST, UP_A, json=completion(
        "Answer", message={"reasoning": "OpenRouter style", "reasoning_details": [{}]}))
    msg = client.post(CHAT, json={"model": "test-chat", "messages": [user()]},
                      headers=account.headers).get_json()["choices"][0]["message"]
    assert msg["reasoning_content"] == "OpenRouter style"
    assert "reasoning" not in msg and "reasoning_details" not in msg


@responses.activate
def test_echoed_reasoning_is_stripped_for_ordinary_models(client, account):
    responses.post(UP_A, json=completion())
    client.post(CHAT, json={"model": "test-chat", "messages": [
        user(), {"role": "assistant", "content": "a", "reasoning_content": "old thoughts"},
        user("again")]}, headers=account.headers)
    assert "reasoning_content" not in sent_body()["messages"][1]


@responses.activate
def test_n_choices_and_logprobs_pass_through(client, account):
    up = completion("x", n=2)
    up["choices"][0]["logprobs"] = {"content": [{"token": "x", "logprob": -0.1, "bytes": [120],
                                                 "top_logprobs": []}]}
    responses.post(UP_A, json=up, match=[matchers.json_params_matcher(
        {"n": 2, "logprobs": True, "top_logprobs": 2}, strict_match=False)])
    body = client.post(CHAT, json={"model": "test-chat", "messages": [user()], "n": 2,
                                   "logprobs": True, "top_logprobs": 2},
                       headers=account.headers).get_json()
    assert len(body["choices"]) == 2
    assert body["choices"][0]["logprobs"]["content"][0]["token"] == "x"


@responses.activate
def test_missing_usage_is_estimated_and_billed(app, client, account, ledger_ok):
    up = completion("x" * 40)
    del up["usage"]
    responses.post(UP_A, json=up)
    body = client.post(CHAT, json={"model": "test-chat", "messages": [user("abcd")]},
                       headers=account.headers).get_json()
    assert body["usage"]["completion_tokens"] == 10 and body["usage"]["estimated"] is True
    assert Decimal(body["usage"]["credits"]) > 0
    assert balance(app, account) == Decimal("100") - Decimal(body["usage"]["credits"])
