"""Self-service against gunicorn (gevent worker) + the sandbox upstream: the OpenAI SDK's model
retrieve, GET /v1/account and /v1/usage, a key budget under 40 parallel calls, CORS and /docs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest
import requests

from tests.e2e.stack import Stack, chat_stack

pytestmark = pytest.mark.e2e

ORIGIN = "https://console.example"
# Each call stays in flight half a second, so parallel calls really overlap at the limit.
BODY = {"model": "gpt-4o-mini", "max_tokens": 200,
        "messages": [{"role": "user", "content": "[sandbox:delay=0.5] Hello"}]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    yield from chat_stack(tmp_path_factory, "account-e2e", BEATRA_CORS_ORIGINS=ORIGIN)


def new_key(stack: Stack, account_id: str, *options: str) -> dict:
    return json.loads(stack.flask("keys", "create", "--account", account_id, *options,
                                  "--json").stdout)


def keys_of(stack: Stack, account_id: str) -> dict[str, dict]:
    listed = json.loads(stack.flask("keys", "list", "--account", account_id, "--json").stdout)
    return {k["key_id"]: k for k in listed["keys"]}


def get(stack: Stack, path: str, key: str, **params: str) -> requests.Response:
    return requests.get(f"{stack.url}{path}", params=params, timeout=30,
                        headers={"Authorization": f"Bearer {key}"})


def chat(stack: Stack, key: str) -> requests.Response:
    return requests.post(f"{stack.url}/v1/chat/completions", json=BODY, timeout=60,
                         headers={"Authorization": f"Bearer {key}"})


def test_sdk_retrieves_a_model_and_404s_an_unknown_one(stack):
    _, key = stack.create_account("10")
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0, timeout=30)
    model = client.models.retrieve("gpt-4o-mini")
    assert (model.id, model.object, model.owned_by) == ("gpt-4o-mini", "model", "beatra")
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert info.value.body["code"] == "not_found"


def test_forty_parallel_calls_on_a_budgeted_key(stack):
    account_id, probe_key = stack.create_account("100")
    # One call to learn what a call holds (R) with this body.
    assert chat(stack, probe_key).status_code == 200
    reserve = next(Decimal(e["amount"]) for e in stack.ledger(account_id)
                   if e["kind"] == "reserve")
    held_per_call = -reserve
    limit = held_per_call * Decimal("2.5")  # room for two calls in flight at once
    capped = new_key(stack, account_id, "--name", "budget", "--credit-limit", str(limit))

    with ThreadPoolExecutor(max_workers=40) as pool:
        responses = list(pool.map(lambda _: chat(stack, capped["api_key"]), range(40)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 402}, [r.text for r in responses if r.status_code >= 500]
    assert statuses.count(200) >= 1 and statuses.count(402) >= 1
    for r in responses:
        if r.status_code == 402:
            error = r.json()["error"]
            assert error["code"] == "insufficient_balance"
            assert error["details"]["limit_source"] == "key_credit_limit"

    key = keys_of(stack, account_id)[capped["key_id"]]
    spent = Decimal(key["spent"])
    assert Decimal("0") < spent <= limit
    account = get(stack, "/v1/account", capped["api_key"]).json()
    assert account["key"] == {"key_id": capped["key_id"], "name": "budget",
                              "credit_limit": key["credit_limit"], "spent": key["spent"],
                              "expires_at": None}
    assert account["reserved"] == "0"
    # Usage per key equals the key's spent and the ledger's captures, to the last digit.
    usage = {g["group"]: g for g in get(stack, "/v1/usage", capped["api_key"],
                                        group_by="key").json()["data"]}
    assert usage[capped["key_id"]]["credits"] == key["spent"]
    assert usage[capped["key_id"]]["requests"] == statuses.count(200)
    captured = -sum(Decimal(e["amount"]) for e in stack.ledger(account_id)
                    if e["kind"] == "capture")
    assert sum(Decimal(g["credits"]) for g in usage.values()) == captured
    assert Decimal(account["balance"]) == Decimal("100") - captured
    assert stack.audit_ok()  # balances == ledger; key spent/held == ledger; no stale holds


def test_cors_and_docs_through_gunicorn(stack):
    preflight = requests.options(f"{stack.url}/v1/usage", timeout=10, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    refused = requests.options(f"{stack.url}/v1/usage", timeout=10, headers={
        "Origin": "https://other.example", "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in refused.headers

    page = requests.get(f"{stack.url}/docs", timeout=10)
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "http" not in page.text  # every asset is one of beatra's own paths
