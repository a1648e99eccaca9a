"""Reasoning styles per model name, and the parameter rejections real upstreams make."""

from __future__ import annotations

import pytest
from sandbox_helpers import content_of, parse_sse, user


def stream(chat, body, prefix="openai"):
    resp = chat({**body, "stream": True}, prefix)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return parse_sse(resp.get_data(as_text=True))


@pytest.mark.parametrize(("prefix", "model"), [("deepseek", "deepseek-reasoner"),
                                               ("kimi", "kimi-k2-thinking")])
def test_reasoning_content_sync_and_streamed_first(chat, prefix, model):
    body = {"model": model, "messages": user("why is the sky blue")}
    resp = chat(body, prefix).get_json()
    message = resp["choices"][0]["message"]
    assert message["reasoning_content"].startswith("Let me think about why is the sky")
    reasoning_words = len(message["reasoning_content"].split())
    details = resp["usage"]["completion_tokens_details"]
    assert details["reasoning_tokens"] == reasoning_words
    assert resp["usage"]["completion_tokens"] == reasoning_words + len(message["content"].split())
    events = stream(chat, body, prefix)
    kinds = [("r" if c["delta"].get("reasoning_content") else "c")
             for e in events[:-1] for c in e["choices"]
             if c["delta"].get("reasoning_content") or c["delta"].get("content")]
    assert kinds == sorted(kinds, reverse=True)  # every reasoning delta before any content
    assert "r" in kinds and "c" in kinds
    assert content_of(events, field="reasoning_content") == message["reasoning_content"]


def test_z1_inline_think_split_across_chunks(chat):
    body = {"model": "glm-z1-air", "messages": user("hello")}
    content = chat(body, "glm").get_json()["choices"][0]["message"]["content"]
    assert content.startswith("<think>Let me think about hello")
    assert "</think>\n\nSandbox reply from glm-z1-air: hello" in content
    pieces = [c["delta"]["content"] for e in stream(chat, body, "glm")[:-1]
              for c in e["choices"] if c["delta"].get("content")]
    assert "".join(pieces) == content
    assert "<think>" not in pieces and not any("<think>" in p for p in pieces)
    assert not any("</think>" in p for p in pieces)
    opened = pieces.index("<thi")
    assert pieces[opened + 1].startswith("nk>")
    closing = next(i for i, p in enumerate(pieces) if p.endswith("</th"))
    assert pieces[closing + 1].startswith("ink>")


def test_openrouter_reasoning_field(chat):
    body = {"model": "z-ai/glm-4.5-or-reasoning", "messages": user("hi")}
    message = chat(body).get_json()["choices"][0]["message"]
    assert message["reasoning"].startswith("Let me think") and "reasoning_content" not in message
    events = stream(chat, body)
    assert content_of(events, field="reasoning") == message["reasoning"]


def test_plain_model_has_no_reasoning(chat):
    message = chat({"model": "gpt-4o", "messages": user("hi")}).get_json()["choices"][0][
        "message"]
    assert "reasoning_content" not in message and "reasoning" not in message


@pytest.mark.parametrize("model", ["o3-mini", "gpt-5-mini", "deepseek-reasoner"])
def test_reasoning_models_reject_max_tokens(chat, model):
    resp = chat({"model": model, "messages": user("hi"), "max_tokens": 50})
    assert resp.status_code == 400
    err = resp.get_json()["error"]
    assert err == {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                   "Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter",
    }
    ok = chat({"model": model, "messages": user("hi"), "max_completion_tokens": 50})
    assert ok.status_code == 200


def test_reasoning_models_reject_sampling_params(chat):
    resp = chat({"model": "gpt-5", "messages": user("hi"), "temperature": 0.2})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "unsupported_value"
    assert resp.get_json()["error"]["param"] == "temperature"
    assert chat({"model": "gpt-5", "messages": user("hi"), "top_p": 0.5}).status_code == 400
    assert chat({"model": "gpt-5", "messages": user("hi"), "temperature": 1}).status_code == 200
    assert chat({"model": "gpt-4o", "messages": user("hi"), "temperature": 0.2,
                 "max_tokens": 20}).status_code == 200


def test_glm_rejects_max_completion_tokens(chat):
    body = {"model": "glm-4.6", "messages": user("hi"), "max_completion_tokens": 20}
    resp = chat(body, "glm")
    assert resp.status_code == 400
    assert resp.get_json()["error"]["param"] == "max_completion_tokens"
    assert chat({**body, "max_completion_tokens": None, "max_tokens": 20},
                "glm").status_code == 200


def test_qwen3_non_stream_needs_thinking_off(chat):
    body = {"model": "qwen3-32b", "messages": user("hi")}
    resp = chat(body, "qwen")
    assert resp.status_code == 400
    err = resp.get_json()["error"]
    assert err["code"] == "invalid_parameter_error"
    assert err["message"] == (
        "parameter.enable_thinking must be set to false for non-streaming calls")
    off = chat({**body, "enable_thinking": False}, "qwen")
    assert off.status_code == 200
    assert "reasoning_content" not in off.get_json()["choices"][0]["message"]
    events = stream(chat, body, "qwen")  # streaming is allowed, and thinks by default
    assert content_of(events, field="reasoning_content").startswith("Let me think")


@pytest.mark.parametrize("prefix", ["deepseek", "kimi"])
def test_missing_reasoning_content_on_tool_turn(chat, prefix):
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "use the tool"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    resp = chat({"model": "deepseek-chat", "messages": messages}, prefix)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["message"] == (
        "Missing `reasoning_content` field in the assistant message at message index 1")
    messages[1]["reasoning_content"] = "I should call f."
    assert chat({"model": "deepseek-chat", "messages": messages}, prefix).status_code == 200
    # The same history is fine on OpenAI, which has no such rule.
    messages[1].pop("reasoning_content")
    assert chat({"model": "gpt-4o", "messages": messages}).status_code == 200


def test_reasoning_counts_toward_cap(chat):
    body = {"model": "deepseek-reasoner", "messages": user("hi"), "max_completion_tokens": 5}
    resp = chat(body, "deepseek").get_json()
    choice = resp["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == ""  # the cap was spent on reasoning
    assert resp["usage"]["completion_tokens"] == 5
    assert resp["usage"]["completion_tokens_details"]["reasoning_tokens"] == 5
