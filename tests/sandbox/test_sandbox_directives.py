"""Fault directives parsed from prompt text, and their effect on chat responses."""

from __future__ import annotations

import json

import pytest
from sandbox_helpers import content_of, parse_sse, user

from beatra.sandbox import directives


def test_parser_syntax_and_stripping():
    d = directives.parse([
        "hi [sandbox:fail=503] [SANDBOX:delay=2.5]",
        "[sandbox:chunks=4,chunk_delay=0.1, truncate] [sandbox:suno_status=generate_audio_failed]",
        "[sandbox:tokens=oops] [sandbox:unknown=1] [sandbox:cached=7]",
    ])
    assert (d.fail, d.delay, d.chunks, d.chunk_delay, d.truncate) == (503, 2.5, 4, 0.1, True)
    assert d.suno_status == "GENERATE_AUDIO_FAILED"
    assert d.tokens is None and d.cached == 7 and not d.malformed
    assert directives.parse(["[sandbox:fail=insufficient_quota]"]).insufficient_quota
    assert directives.clean("say [sandbox:delay=1]  hello [sandbox:x]") == "say hello"


def test_directives_come_from_every_user_message_and_are_not_echoed(chat):
    messages = [{"role": "user", "content": "first [sandbox:cached=3]"},
                {"role": "assistant", "content": "ok"},
                {"role": "user",
                 "content": [{"type": "text", "text": "second [sandbox:tokens=9]"}]}]
    body = chat({"model": "gpt-4o", "messages": messages}).get_json()
    content = body["choices"][0]["message"]["content"]
    assert "sandbox:" not in content and len(content.split()) == 9
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 3
    assert body["usage"]["prompt_tokens"] == (1 + 3) + (1 + 3) + (1 + 3)


@pytest.mark.parametrize(("directive", "status", "code"), [
    ("fail=503", 503, None),
    ("fail=500", 500, None),
    ("fail=429", 429, "rate_limit_exceeded"),
    ("fail=insufficient_quota", 429, "insufficient_quota"),
])
def test_fail(chat, directive, status, code):
    resp = chat({"model": "gpt-4o", "messages": user(f"x [sandbox:{directive}]"),
                 "stream": True})
    assert resp.status_code == status
    err = resp.get_json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["code"] == code
    if code == "rate_limit_exceeded":
        assert resp.headers["retry-after"] == "1"
    if code == "insufficient_quota":
        assert "retry-after" not in resp.headers


def test_delay_and_chunk_delay(chat, sleeps):
    body = {"model": "gpt-4o", "stream": True,
            "messages": user("x [sandbox:delay=2.5] [sandbox:chunks=3,chunk_delay=0.1]")}
    events = parse_sse(chat(body).get_data(as_text=True))
    assert sleeps[0] == 2.5
    assert sleeps[1:] == [0.1] * (len(events) - 2)  # between every pair of JSON chunks
    assert len([e for e in events[:-1] if e["choices"][0]["delta"].get("content")]) == 3


def test_tokens_exact_length(chat):
    body = {"model": "gpt-4o", "messages": user("count [sandbox:tokens=50]")}
    resp = chat(body).get_json()
    assert len(resp["choices"][0]["message"]["content"].split()) == 50
    assert resp["usage"]["completion_tokens"] == 50


def test_truncate_stream_cuts_connection(sbx):
    body = {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True},
            "messages": user("one two three four five six [sandbox:truncate]")}
    resp = sbx.post("/openai/v1/chat/completions", json=body,
                    headers={"Authorization": "Bearer k"}, buffered=False)
    received = b""
    with pytest.raises(ConnectionResetError):
        for block in resp.response:
            received += block
    events = parse_sse(received.decode())
    assert content_of(events)  # some content arrived before the cut
    assert "[DONE]" not in events and all(e["choices"] for e in events)


def test_truncate_and_malformed_non_stream(chat):
    cut = chat({"model": "gpt-4o", "messages": user("x [sandbox:truncate]")})
    assert cut.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.get_data(as_text=True))
    bad = chat({"model": "gpt-4o", "messages": user("x [sandbox:malformed]")})
    assert bad.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad.get_data(as_text=True))


def test_malformed_stream_has_garbage_line_then_continues(chat):
    body = {"model": "gpt-4o", "stream": True, "messages": user("a b c d [sandbox:malformed]")}
    events = parse_sse(chat(body).get_data(as_text=True))
    garbage = [i for i, e in enumerate(events) if isinstance(e, str) and e != "[DONE]"]
    assert len(garbage) == 1 and 0 < garbage[0] < len(events) - 2
    assert events[-1] == "[DONE]"


def test_error_after(chat):
    body = {"model": "gpt-4o", "stream": True,
            "messages": user("a b c d e f [sandbox:error_after=2]")}
    events = parse_sse(chat(body).get_data(as_text=True))
    *chunks, last = events
    assert set(last) == {"error"} and last["error"]["message"]
    assert len([c for c in chunks if c["choices"][0]["delta"].get("content")]) == 2
