"""Sandbox chat completions: OpenAI wire shape, streaming, tools, structured output."""

from __future__ import annotations

import json

from sandbox_helpers import content_of, parse_sse, user

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["city", "days", "unit"],
        },
    },
}
OTHER_TOOL = {"type": "function", "function": {"name": "noop", "parameters": {}}}


def test_sync_completion_shape_and_usage(chat):
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hello there sandbox world"}]
    resp = chat({"model": "gpt-4o-mini", "messages": messages})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-4o-mini"
    assert body["system_fingerprint"] and body["service_tier"] == "default"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["logprobs"] is None
    content = choice["message"]["content"]
    assert content == "Sandbox reply from gpt-4o-mini: Hello there sandbox world"
    usage = body["usage"]
    assert usage["prompt_tokens"] == (2 + 3) + (4 + 3)  # words + 3 per message
    assert usage["completion_tokens"] == len(content.split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


def test_auth_and_required_fields(chat):
    resp = chat({"model": "gpt-4o", "messages": user("hi")}, headers={})
    assert resp.status_code == 401
    assert set(resp.get_json()["error"]) == {"message", "type", "param", "code"}
    missing_model = chat({"messages": user("hi")})
    assert missing_model.status_code == 400
    assert missing_model.get_json()["error"]["type"] == "invalid_request_error"
    assert chat({"model": "gpt-4o"}).status_code == 400


def test_stream_framing_usage_and_obfuscation(chat):
    body = {"model": "gpt-4o", "messages": user("stream this please"), "stream": True,
            "stream_options": {"include_usage": True}}
    resp = chat(body)
    assert resp.status_code == 200
    assert resp.mimetype == "text/event-stream"
    events = parse_sse(resp.get_data(as_text=True))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(isinstance(c.get("obfuscation"), str) for c in chunks)
    *content_chunks, usage_chunk = chunks
    assert all(c["usage"] is None for c in content_chunks)
    assert usage_chunk["choices"] == []
    assert content_chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in content_chunks[:-1])
    sync = chat({"model": "gpt-4o", "messages": user("stream this please")}).get_json()
    assert content_of(events) == sync["choices"][0]["message"]["content"]
    assert usage_chunk["usage"]["completion_tokens"] == sync["usage"]["completion_tokens"]


def test_stream_without_usage_or_obfuscation(chat):
    body = {"model": "gpt-4o", "messages": user("hi"), "stream": True,
            "stream_options": {"include_obfuscation": False}}
    events = parse_sse(chat(body).get_data(as_text=True))
    assert events[-1] == "[DONE]"
    assert all("usage" not in e and "obfuscation" not in e for e in events[:-1])
    assert all(e["choices"] for e in events[:-1])


def test_tool_call_sync(chat):
    body = {"model": "gpt-4o", "messages": user("weather?"), "tools": [OTHER_TOOL, WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    choice = chat(body).get_json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    args = json.loads(call["function"]["arguments"])
    assert isinstance(args["city"], str) and isinstance(args["days"], int)
    assert args["unit"] in ("c", "f")
    # Without a named choice the first tool is called; "none" disables calling.
    auto = chat({**body, "tool_choice": "auto"}).get_json()["choices"][0]
    assert auto["message"]["tool_calls"][0]["function"]["name"] == "noop"
    none = chat({**body, "tool_choice": "none"}).get_json()["choices"][0]
    assert none["finish_reason"] == "stop" and "tool_calls" not in none["message"]


def test_tool_call_stream_fragments(chat):
    body = {"model": "gpt-4o", "messages": user("weather?"), "tools": [WEATHER_TOOL],
            "stream": True}
    events = parse_sse(chat(body).get_data(as_text=True))
    fragments = [tc for e in events[:-1] for c in e["choices"]
                 for tc in c["delta"].get("tool_calls", [])]
    first, *rest = fragments
    assert first["index"] == 0 and first["id"].startswith("call_")
    assert first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": ""}
    assert len(rest) > 1
    assert all(set(f) == {"index", "function"} and set(f["function"]) == {"arguments"}
               for f in rest)
    args = json.loads("".join(f["function"]["arguments"] for f in rest))
    assert set(args) == {"city", "days", "unit"}
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_result_turn_answers_in_text(chat):
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny and 21C"},
    ]
    choice = chat({"model": "gpt-4o", "messages": messages,
                   "tools": [WEATHER_TOOL]}).get_json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert "sunny and 21C" in choice["message"]["content"]


def test_json_schema_and_json_object(chat):
    schema = {"type": "object", "properties": {
        "name": {"type": "string"}, "age": {"type": "integer"}, "ok": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"zip": {"type": "string"}},
                    "required": ["zip"]}},
        "required": ["name", "age", "ok", "tags", "address"], "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema,
                                                  "strict": True}}
    content = chat({"model": "gpt-4o", "messages": user("who?"), "response_format": fmt}
                   ).get_json()["choices"][0]["message"]["content"]
    data = json.loads(content)
    assert isinstance(data["name"], str) and isinstance(data["age"], int)
    assert data["ok"] is True and isinstance(data["tags"], list)
    assert isinstance(data["address"]["zip"], str)
    obj = chat({"model": "gpt-4o", "messages": user("who?"),
                "response_format": {"type": "json_object"}}).get_json()
    assert isinstance(json.loads(obj["choices"][0]["message"]["content"]), dict)


def test_n_choices(chat):
    body = {"model": "gpt-4o", "messages": user("two answers"), "n": 2}
    resp = chat(body).get_json()
    texts = [c["message"]["content"] for c in resp["choices"]]
    assert [c["index"] for c in resp["choices"]] == [0, 1]
    assert texts[0] != texts[1]
    assert resp["usage"]["completion_tokens"] == sum(len(t.split()) for t in texts)
    events = parse_sse(chat({**body, "stream": True}).get_data(as_text=True))
    assert [content_of(events, i) for i in (0, 1)] == texts


def test_logprobs_sync_and_stream(chat):
    body = {"model": "gpt-4o", "messages": user("log me"), "logprobs": True, "top_logprobs": 2}
    choice = chat(body).get_json()["choices"][0]
    entries = choice["logprobs"]["content"]
    assert "".join(e["token"] for e in entries) == choice["message"]["content"]
    for e in entries:
        assert e["logprob"] <= 0 and bytes(e["bytes"]).decode() == e["token"]
        assert len(e["top_logprobs"]) == 2 and e["top_logprobs"][0]["token"] == e["token"]
    events = parse_sse(chat({**body, "stream": True}).get_data(as_text=True))
    streamed = [e for ev in events[:-1] for c in ev["choices"]
                if c["logprobs"] for e in c["logprobs"]["content"]]
    assert streamed == entries


def test_max_tokens_cap_gives_length(chat):
    body = {"model": "gpt-4o", "messages": user("a b c d e f g h"), "max_tokens": 3}
    resp = chat(body).get_json()
    assert resp["choices"][0]["finish_reason"] == "length"
    assert resp["choices"][0]["message"]["content"] == "Sandbox reply from"
    assert resp["usage"]["completion_tokens"] == 3


def test_unknown_fields_and_custom_path_404(chat, sbx):
    assert chat({"model": "gpt-4o", "messages": user("x"), "enable_thinking": False,
                 "thinking": {"type": "disabled"}, "whatever": 1}).status_code == 200
    resp = sbx.post("/openai/v1/nope", headers={"Authorization": "Bearer k"})
    assert resp.status_code == 404 and "error" in resp.get_json()
