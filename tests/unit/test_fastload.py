"""The quick Schema.load (beatra.api.fastload) gives exactly what marshmallow gives: the same
loaded request for every body marshmallow accepts, marshmallow's own errors for every body it
refuses. Checked on chat requests covering every field, and on random mutations of them."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError

from beatra.api.chat.schemas import ChatCompletionRequestSchema
from beatra.api.fastload import FastLoading

SCHEMA = ChatCompletionRequestSchema()

SYSTEM = {"role": "system", "content": "You are terse."}
USER = {"role": "user", "content": "Hi"}
PARTS = {"role": "user", "name": "ann", "content": [
    {"type": "text", "text": "look"},
    {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    {"type": "file", "file": {"file_id": "f1", "filename": None}}]}
ASSISTANT = {"role": "assistant", "content": None, "reasoning_content": "hm",
             "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}],
             "audio": {"id": "a1", "expires_at": 3, "extra": True}}
TOOL = {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "42"}]}
VALID: list[dict[str, Any]] = [
    {"model": "m", "messages": [USER]},
    {"model": "auto", "messages": [SYSTEM, USER, ASSISTANT, TOOL, PARTS], "stream": True,
     "stream_options": {"include_usage": True}},
    {"model": "m", "messages": [{"role": "developer", "content": [{"type": "text",
                                                                  "text": "x"}]}, USER],
     "temperature": 0.5, "top_p": 1, "max_tokens": 10, "max_completion_tokens": 20, "n": 2,
     "seed": -4, "stop": ["a", "b"], "frequency_penalty": -1.5, "presence_penalty": 2,
     "logit_bias": {"50256": -100}, "logprobs": True, "top_logprobs": 3,
     "parallel_tool_calls": False, "reasoning_effort": "low", "metadata": {"k": "v"},
     "store": False, "service_tier": None, "safety_identifier": "u1",
     "prompt_cache_key": "p", "user": "u", "model_options": {"top_k": 5}, "vendor_x": [1]},
    {"model": "m", "messages": [USER], "tools": [
        {"type": "function", "function": {"name": "get_weather", "description": "d",
                                          "parameters": {"type": "object"}, "strict": True}},
        {"function": {"name": "f"}}],
     "tool_choice": {"type": "function", "function": {"name": "f"}}},
    {"model": "m", "messages": [USER], "tools": [{"function": {"name": "f"}}],
     "tool_choice": "required", "response_format": {"type": "json_object"}},
    {"model": "m", "messages": [USER], "tool_choice": "none", "stop": "END",
     "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {},
                                                                "strict": None}}},
    {"model": "m", "messages": [USER], "modalities": ["text", "audio"],
     "audio": {"voice": "alloy", "format": "mp3"}, "response_format": {"type": "text"}},
    {"model": "m", "messages": [USER], "temperature": None, "stream_options": None,
     "tools": None, "response_format": None, "logit_bias": None, "metadata": None},
]


def _marshmallow(data: Any) -> tuple[str, Any]:
    FastLoading.quick = False
    try:
        return "loaded", SCHEMA.load(copy.deepcopy(data))
    except ValidationError as exc:
        return "refused", exc.messages
    finally:
        FastLoading.quick = True


def _quick(data: Any) -> tuple[str, Any]:
    try:
        return "loaded", SCHEMA.load(copy.deepcopy(data))
    except ValidationError as exc:
        return "refused", exc.messages


@pytest.fixture(autouse=True)
def _quick_on() -> Iterator[None]:
    FastLoading.quick = True
    yield
    FastLoading.quick = True


@pytest.mark.parametrize("body", VALID)
def test_valid_requests_load_the_same_without_marshmallows_loop(body, monkeypatch):
    expected = _marshmallow(body)
    assert expected[0] == "loaded", expected
    # the quick path is really taken: marshmallow's load loop is not entered at all
    monkeypatch.setattr(Schema, "_do_load", lambda *a, **k: pytest.fail("slow path taken"))
    assert _quick(body) == expected


@pytest.mark.parametrize("body", [
    {"messages": [USER]}, {"model": "m", "messages": []}, {"model": 5, "messages": [USER]},
    {"model": "m", "messages": [{"role": "user"}]}, [1], "x", None,
    {"model": "m", "messages": [USER], "top_logprobs": 2},
    {"model": "m", "messages": [USER], "model_options": {"n": 3}},
    {"model": "m", "messages": [USER], "max_output_tokens": 3},
    {"model": "m", "messages": [USER], "tool_choice": {"type": "function",
                                                      "function": {"name": "g"}}},
])
def test_refused_requests_get_marshmallows_own_errors(body):
    assert _quick(body) == _marshmallow(body)
    assert _quick(body)[0] == "refused"


# Any JSON value, small.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
    | st.sampled_from(["user", "system", "assistant", "tool", "developer", "function",
                       "text", "image_url", "auto", "none", "required", "json_schema", "f"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["role", "content", "type", "name", "function", "text", "model",
                         "messages", "arguments", "id", "n", "stream", "x"]), inner,
        max_size=3),
    max_leaves=8)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*path, index))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    body = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(body)))
        if not path:
            continue
        *parents, last = path
        holder = body
        for step in parents:
            holder = holder[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            del holder[last]
        elif action == "add" and isinstance(holder, dict):
            holder[draw(st.sampled_from(["n", "stream", "type", "role", "zz", "name",
                                         "tools", "max_tokens"]))] = draw(JSON)
        else:
            holder[last] = draw(JSON)
    return body


@settings(max_examples=1500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_requests_load_or_fail_exactly_as_marshmallow(body):
    assert _quick(body) == _marshmallow(body)
