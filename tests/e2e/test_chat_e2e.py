"""The official OpenAI SDK against gunicorn (gevent worker) + the sandbox upstream."""

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

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    yield from chat_stack(tmp_path_factory, "chat-e2e", BEATRA_SSE_PING_SECONDS="0.2")


@pytest.fixture(scope="module")
def account(stack: Stack) -> tuple[str, str]:
    return stack.create_account("1000")


def sdk(stack: Stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def client(stack: Stack, account: tuple[str, str]) -> openai.OpenAI:
    return sdk(stack, account[1])


def extra(obj, name: str):
    return (obj.model_extra or {}).get(name)


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert {"gpt-4o-mini", "deepseek-reasoner", "glm-z1-air"} <= set(ids)


def test_sync_completion_with_credits(client):
    resp = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}])
    assert resp.model == "gpt-4o-mini"
    assert "Say hello" in resp.choices[0].message.content
    assert resp.usage.total_tokens > 0
    assert Decimal(extra(resp.usage, "credits")) > 0
    assert Decimal(extra(resp.usage, "credits_usd_reference")) == \
        Decimal(extra(resp.usage, "credits")) / 100


def test_stream_with_usage(client):
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Stream [sandbox:chunks=6]"}],
        stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Sandbox reply")
    assert len([c for c in chunks if c.choices]) >= 6
    assert chunks[-1].choices == [] and Decimal(extra(chunks[-1].usage, "credits")) > 0


def test_stream_without_usage_request_has_no_usage_chunk(client):
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_tool_calls_sync_and_stream(client):
    resp = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER_TOOL])
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)

    args: dict[int, str] = {}
    names: dict[int, str] = {}
    for chunk in client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather?"}],
            tools=[WEATHER_TOOL], tool_choice="required", stream=True):
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            args[tc.index] = args.get(tc.index, "") + (tc.function.arguments or "")
            if tc.function.name:
                names[tc.index] = tc.function.name
    assert names == {0: "get_weather"} and "city" in json.loads(args[0])


def test_json_schema_passthrough(client):
    schema = {"type": "object", "properties": {"name": {"type": "string"},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    resp = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "A person"}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "person", "schema": schema, "strict": True}})
    data = json.loads(resp.choices[0].message.content)
    assert set(data) >= {"name", "age"} and isinstance(data["age"], int)


def test_n_and_logprobs(client):
    resp = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "two please"}], n=2,
        logprobs=True, top_logprobs=2)
    assert [c.index for c in resp.choices] == [0, 1]
    assert resp.choices[0].logprobs.content[0].token


def test_reasoning_content_style(client):
    resp = client.chat.completions.create(
        model="deepseek-reasoner", messages=[{"role": "user", "content": "Think"}])
    msg = resp.choices[0].message
    assert extra(msg, "reasoning_content") and "<think>" not in msg.content


@pytest.mark.parametrize("model", ["glm-z1-air", "or-reasoning-mini", "deepseek-reasoner"])
def test_streamed_reasoning_is_normalised(client, model):
    reasoning, content = "", ""
    for chunk in client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Ponder [sandbox:chunks=12]"}],
            stream=True):
        if chunk.choices:
            reasoning += extra(chunk.choices[0].delta, "reasoning_content") or ""
            content += chunk.choices[0].delta.content or ""
    assert reasoning.strip().startswith("Let me think")
    assert content.startswith("Sandbox reply") and "think>" not in content


def test_think_tags_sync(client):
    msg = client.chat.completions.create(
        model="glm-z1-air", messages=[{"role": "user", "content": "x"}]).choices[0].message
    assert extra(msg, "reasoning_content") and msg.content.startswith("Sandbox reply")


def test_deepseek_tool_round_trip_without_echoing_reasoning(client):
    history = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.chat.completions.create(model="deepseek-reasoner", messages=history,
                                           tools=[WEATHER_TOOL])
    msg = first.choices[0].message
    assert msg.tool_calls and extra(msg, "reasoning_content")
    # As the contract advises, the client does not send reasoning_content back.
    history.append({"role": "assistant", "content": msg.content,
                    "tool_calls": [tc.model_dump() for tc in msg.tool_calls]})
    history.append({"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "sunny"})
    second = client.chat.completions.create(model="deepseek-reasoner", messages=history,
                                            tools=[WEATHER_TOOL])
    assert second.choices[0].message.content


def test_max_tokens_and_sampling_mapped_for_reasoning_model(client):
    resp = client.chat.completions.create(
        model="o4-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=50,
        temperature=0.4)
    assert resp.choices[0].message.content is not None


def test_qwen_non_stream_switches_thinking_off(client):
    resp = client.chat.completions.create(
        model="qwen3-32b", messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content


def test_auto_routing_reports_the_model(client):
    resp = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL])
    assert resp.model in {"gpt-4o-mini", "o4-mini", "deepseek-reasoner"}
    resp = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}])
    assert resp.model == "glm-z1-air"  # cheapest of all


def test_fallback_to_second_route(client):
    resp = client.chat.completions.create(
        model="fallback-chat", messages=[{"role": "user", "content": "hi"}])
    assert resp.model == "fallback-chat" and resp.choices[0].message.content


def test_unknown_model_is_422(client):
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["param"] == "/model"


def test_low_balance_is_402(stack):
    _, key = stack.create_account("0.001")
    with pytest.raises(openai.APIStatusError) as info:
        sdk(stack, key).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 402
    assert info.value.body["code"] == "insufficient_balance"


def test_upstream_failure_charges_nothing(stack):
    account_id, key = stack.create_account("10")
    with pytest.raises(openai.APIStatusError) as info:
        sdk(stack, key).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "[sandbox:fail=503]"}])
    assert info.value.status_code == 503
    assert stack.balance(account_id) == Decimal("10")


def test_truncated_stream_is_billed_for_what_was_relayed(stack):
    account_id, key = stack.create_account("10")
    seen = ""
    with pytest.raises(openai.APIError):
        for chunk in sdk(stack, key).chat.completions.create(
                model="gpt-4o-mini", stream=True,
                messages=[{"role": "user", "content": "[sandbox:truncate,tokens=40] go"}]):
            if chunk.choices:
                seen += chunk.choices[0].delta.content or ""
    assert seen  # some output reached the client before the cut
    spent = Decimal("10") - stack.balance(account_id)
    reserve = -Decimal(next(e["amount"] for e in stack.ledger(account_id)
                            if e["kind"] == "reserve"))
    assert Decimal(0) < spent < reserve


def test_concurrent_calls_never_overdraw(stack):
    """50 parallel slow calls on a balance that covers 10 reserves: exactly 10 run."""
    probe_id, probe_key = stack.create_account("100")
    body = {"model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "[sandbox:delay=1] hi"}]}
    sdk(stack, probe_key).chat.completions.create(**body)
    reserve = -Decimal(next(e["amount"] for e in stack.ledger(probe_id)
                            if e["kind"] == "reserve"))

    account_id, key = stack.create_account(str(reserve * 10))
    client = sdk(stack, key)

    def call(_: int) -> int:
        try:
            client.chat.completions.create(**body)
            return 200
        except openai.APIStatusError as exc:
            return exc.status_code

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(call, range(50)))
    assert statuses.count(200) == 10 and statuses.count(402) == 40
    assert stack.balance(account_id) >= 0
    assert stack.audit_ok()


def test_silent_upstream_gets_keepalive_pings(stack, account, client):
    resp = requests.post(f"{stack.url}/v1/chat/completions", stream=True, timeout=30,
                         headers={"Authorization": f"Bearer {account[1]}"},
                         json={"model": "gpt-4o-mini", "stream": True, "messages": [
                             {"role": "user", "content": "[sandbox:chunks=3,chunk_delay=0.7] hi"}]})
    body = b"".join(resp.iter_content(None))
    assert b": ping\n\n" in body and body.endswith(b"data: [DONE]\n\n")
    # The SDK ignores the comments.
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", stream=True,
        messages=[{"role": "user", "content": "[sandbox:chunks=3,chunk_delay=0.7] hi"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_ledger_balances_after_everything(stack):
    assert stack.audit_ok()
