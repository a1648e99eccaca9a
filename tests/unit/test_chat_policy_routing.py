"""Parameter policy, reasoning restoration on tool-call turns, and model="auto"."""

from __future__ import annotations

import json

import pytest
import responses

from beatra.chat.policy import ChatPolicy
from beatra.chat.reasoning import ThinkSplitter, split_think
from tests.unit.chat_helpers import UP_A, UP_B, completion, user

CHAT = "/v1/chat/completions"


def sent(i: int = -1) -> dict:
    return json.loads(responses.calls[i].request.body)


@responses.activate
def test_reasoner_policy_maps_tokens_drops_sampling_and_sets_fields(client, account):
    responses.post(UP_A, json=completion())
    client.post(CHAT, json={"model": "test-reasoner", "messages": [user()],
                            "max_completion_tokens": 321, "temperature": 0.2, "top_p": 0.5,
                            "seed": 4}, headers=account.headers)
    body = sent()
    assert body["max_tokens"] == 321 and "max_completion_tokens" not in body
    assert "temperature" not in body and "top_p" not in body
    assert body["seed"] == 4
    assert body["enable_thinking"] is False  # non-streaming call


@responses.activate
def test_non_stream_fields_not_sent_when_streaming(client, account):
    responses.post(UP_A, body=b"data: [DONE]\n\n", content_type="text/event-stream")
    client.post(CHAT, json={"model": "test-reasoner", "messages": [user()], "stream": True},
                headers=account.headers)
    assert "enable_thinking" not in sent()


@responses.activate
def test_tool_call_round_trip_restores_reasoning_for_providers_that_need_it(client, account):
    tool_turn = completion(None, finish="tool_calls", message={
        "reasoning_content": "I should call get_weather.",
        "tool_calls": [{"id": "call_42", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}],
    })
    responses.post(UP_A, json=tool_turn)
    tools = [{"type": "function", "function": {"name": "get_weather",
                                               "parameters": {"type": "object"}}}]
    first = client.post(CHAT, json={"model": "test-reasoner", "messages": [user("weather?")],
                                    "tools": tools}, headers=account.headers).get_json()
    assistant = first["choices"][0]["message"]
    assert assistant["reasoning_content"] == "I should call get_weather."

    # The client follows the contract: it does not echo reasoning_content back.
    assistant.pop("reasoning_content")
    responses.replace(responses.POST, UP_A, json=completion("It is sunny."))
    history = [user("weather?"), assistant,
               {"role": "tool", "tool_call_id": "call_42", "content": "sunny"}]
    second = client.post(CHAT, json={"model": "test-reasoner", "messages": history,
                                     "tools": tools}, headers=account.headers)
    assert second.status_code == 200
    forwarded = sent()["messages"][1]
    assert forwarded["reasoning_content"] == "I should call get_weather."


@responses.activate
def test_restored_reasoning_is_scoped_to_the_account(client, account, make_account):
    responses.post(UP_A, json=completion(None, message={
        "reasoning_content": "secret plan",
        "tool_calls": [{"id": "call_x", "type": "function",
                        "function": {"name": "f", "arguments": "{}"}}]}))
    tools = [{"type": "function", "function": {"name": "f"}}]
    client.post(CHAT, json={"model": "test-reasoner", "messages": [user()], "tools": tools},
                headers=account.headers)
    other = make_account()
    history = [user(), {"role": "assistant", "tool_calls": [
        {"id": "call_x", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_x", "content": "r"}]
    client.post(CHAT, json={"model": "test-reasoner", "messages": history, "tools": tools},
                headers=other.headers)
    assert "reasoning_content" not in sent()["messages"][1]


@responses.activate
def test_auto_picks_cheapest_capable_model_and_reports_it(client, account):
    responses.post(UP_B, json=completion("cheap"))
    body = client.post(CHAT, json={"model": "auto", "messages": [user()]},
                       headers=account.headers).get_json()
    assert body["model"] == "test-cheap"
    assert sent()["model"] == "up-cheap"

    responses.post(UP_A, json=completion("tools"))
    body = client.post(CHAT, json={"model": "auto", "messages": [user()], "tools": [
        {"type": "function", "function": {"name": "f"}}]}, headers=account.headers).get_json()
    assert body["model"] == "test-chat"  # cheaper of the two models with tools

    body = client.post(CHAT, json={"model": "auto", "messages": [user()], "tools": [
        {"type": "function", "function": {"name": "f"}}], "reasoning_effort": "low"},
        headers=account.headers).get_json()
    assert body["model"] == "test-reasoner"


def test_auto_with_unmeetable_needs_is_422(client, account):
    resp = client.post(CHAT, json={"model": "auto", "messages": [
        {"role": "user", "content": [{"type": "input_audio",
                                      "input_audio": {"data": "AA==", "format": "wav"}}]}]},
        headers=account.headers)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["param"] == "/model"
    assert "audio_input" in resp.get_json()["error"]["message"]


@pytest.mark.parametrize("params", [{"token_limit_field": "max_length"}, {"drop": "temperature"},
                                    {"reasoning_echo": "always"}, {"colour": "blue"},
                                    {"default_max_output": 0}])
def test_bad_policy_params_are_rejected(params):
    with pytest.raises(ValueError):
        ChatPolicy.from_params(params)


def test_split_think_variants():
    assert split_think("  <think>a</think>\nb") == ("a", "b")
    assert split_think("<think>unterminated") == ("unterminated", "")
    assert split_think("</think>stray") == (None, "stray")
    assert split_think("plain <think>not at start</think>") == (
        None, "plain <think>not at start</think>")


def test_splitter_every_split_of_every_piece():
    text = "\n<think>a<b c</think>\n\nd <think> e"
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            s = ThinkSplitter()
            outs = [s.feed(text[:i]), s.feed(text[i:j]), s.feed(text[j:]), s.flush()]
            assert "".join(o[0] for o in outs) == "a<b c"
            assert "".join(o[1] for o in outs) == "d <think> e"


def test_splitter_without_tags_passes_text_through_immediately():
    s = ThinkSplitter()
    assert s.feed("Hello") == ("", "Hello")
    assert s.feed(" <think>") == ("", " <think>")


def test_expired_reasoning_memos_are_not_restored_and_get_pruned(app, account):
    from datetime import timedelta

    from sqlalchemy import func, select, update

    from beatra.chat import memos
    from beatra.chat.models import ReasoningMemo
    from beatra.extensions import db
    from beatra.timeutil import utcnow

    with app.app_context():
        memos.remember(account.account_id, {"call_old": "old thoughts"})
        db.session.execute(update(ReasoningMemo).values(
            created_at=utcnow() - memos.RETENTION - timedelta(minutes=1)))
        db.session.commit()
        assert memos.recall(account.account_id, ["call_old"]) is None
        memos.remember(account.account_id, {"call_new": "new thoughts"})
        assert memos.recall(account.account_id, ["call_new"]) == "new thoughts"
        assert db.session.scalar(select(func.count()).select_from(ReasoningMemo)) == 1


def test_model_options_never_override_the_bound_fields_in_the_upstream_body():
    """Defence in depth behind the schema's refusal: the policy writes the fields the reserve
    was computed on after merging model_options."""
    policy = ChatPolicy(default_max_output=100)
    request = {"model": "m", "messages": [user("hi")], "max_tokens": 1, "stream": False,
               "model_options": {"max_completion_tokens": 5000, "model": "dear",
                                 "messages": [], "stream": True, "top_k": 3}}
    body = policy.upstream_body(request, "cheap", restore_reasoning=lambda ids: None)
    assert body["model"] == "cheap" and body["messages"] == [user("hi")]
    assert body["max_completion_tokens"] == 1 and body["stream"] is False
    assert body["top_k"] == 3 and "model_options" not in body
