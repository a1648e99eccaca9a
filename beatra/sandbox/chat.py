"""OpenAI-compatible ``/chat/completions`` for every chat provider prefix.

One engine serves all prefixes; the prefix only switches on the provider's quirks
(parameter rejections) so the gateway's per-provider policy can be exercised.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from . import chat_build, chat_render, directives
from .common import (
    has_bearer,
    json_body,
    json_response,
    openai_auth_error,
    openai_error,
    openai_forced_error,
    sleep_for,
)

CHAT_PROVIDERS = ("openai", "deepseek", "kimi", "glm", "qwen")

bp = Blueprint("sandbox_chat", __name__)


def _bad(message: str, param: str | None = None, code: str | None = None) -> Response:
    return openai_error(400, message, "invalid_request_error", code, param)


def _validate_shape(body: dict[str, Any]) -> Response | None:
    if not body.get("model") or not isinstance(body.get("model"), str):
        return _bad("you must provide a model parameter", "model", "missing_required_parameter")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _bad("'messages' must be a non-empty array", "messages",
                    "missing_required_parameter")
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        return _bad("Each message must be an object with a 'role'.", "messages")
    n = body.get("n", 1)
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128):
        return _bad(f"Invalid value for 'n': {n!r}. Expected 1 to 128.", "n", "invalid_value")
    top = body.get("top_logprobs")
    if top is not None:
        if body.get("logprobs") is not True:
            return _bad("'top_logprobs' requires 'logprobs' to be true.", "top_logprobs")
        if not isinstance(top, int) or not 0 <= top <= 20:
            return _bad("'top_logprobs' must be between 0 and 20.", "top_logprobs",
                        "invalid_value")
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            return _bad(f"Invalid '{key}': integer below minimum value.", key, "invalid_value")
    choice = body.get("tool_choice")
    names = [(t.get("function") or {}).get("name") for t in body.get("tools") or []
             if isinstance(t, dict)]
    if choice == "required" and not names:
        return _bad("'tool_choice' is 'required' but no tools were provided.", "tool_choice")
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        if wanted not in names:
            return _bad(f"Invalid value for 'tool_choice': function '{wanted}' not found in "
                        "'tools'.", "tool_choice", "invalid_value")
    fmt = body.get("response_format")
    if (isinstance(fmt, dict) and fmt.get("type") == "json_schema"
            and not isinstance((fmt.get("json_schema") or {}).get("schema", {}), dict)):
        return _bad("'response_format.json_schema.schema' must be an object.",
                    "response_format")
    return None


def _validate_quirks(provider: str, body: dict[str, Any]) -> Response | None:
    """The parameter rejections real upstreams make (section 1 and 2 of the wire doc)."""
    model = body["model"]
    if chat_build.is_reasoning_model(model):
        if body.get("max_tokens") is not None:
            return _bad("Unsupported parameter: 'max_tokens' is not supported with this model. "
                        "Use 'max_completion_tokens' instead.", "max_tokens",
                        "unsupported_parameter")
        for key in ("temperature", "top_p"):
            value = body.get(key)
            if value is not None and value != 1:
                return _bad(f"Unsupported value: '{key}' does not support {value} with this "
                            "model. Only the default (1) value is supported.", key,
                            "unsupported_value")
    if provider == "glm" and body.get("max_completion_tokens") is not None:
        return _bad("Invalid API parameter: 'max_completion_tokens' is not supported, "
                    "use 'max_tokens'.", "max_completion_tokens", "1210")
    if (provider == "qwen" and not body.get("stream") and "qwen3" in model.lower()
            and body.get("enable_thinking") is not False):
        return _bad("parameter.enable_thinking must be set to false for non-streaming calls",
                    None, "invalid_parameter_error")
    thinking = body.get("thinking")
    disabled = isinstance(thinking, dict) and thinking.get("type") == "disabled"
    if provider in ("deepseek", "kimi") and not disabled:
        for i, m in enumerate(body["messages"]):
            if m.get("role") == "assistant" and m.get("tool_calls") and \
                    not m.get("reasoning_content"):
                return _bad("Missing `reasoning_content` field in the assistant message at "
                            f"message index {i}", f"messages[{i}].reasoning_content",
                            "invalid_request_error")
    return None


def chat_completions(provider: str) -> Response:
    if not has_bearer():
        return openai_auth_error()
    body = json_body()
    if body is None:
        return _bad("We could not parse the JSON body of your request.")
    error = _validate_shape(body)
    if error is not None:
        return error
    d = directives.parse(chat_build.raw_user_texts(body["messages"]))
    sleep_for(d)
    forced = openai_forced_error(d)
    if forced is not None:
        return forced
    error = _validate_quirks(provider, body)
    if error is not None:
        return error
    plan = chat_build.build_plan(body, d, provider)
    headers = {"x-request-id": f"req_{plan.id[-24:]}", "openai-processing-ms": "1"}
    if not body.get("stream"):
        return json_response(chat_render.completion_body(plan), 200, headers, d)
    options = body.get("stream_options") or {}
    events = chat_render.stream_events(
        plan, d,
        include_usage=options.get("include_usage") is True,
        obfuscate=options.get("include_obfuscation") is not False,
    )
    headers["Cache-Control"] = "no-cache"
    return Response(events, 200, headers, mimetype="text/event-stream")


for _provider in CHAT_PROVIDERS:
    bp.add_url_rule(
        f"/{_provider}/v1/chat/completions",
        endpoint=f"chat_{_provider}",
        view_func=chat_completions,
        defaults={"provider": _provider},
        methods=["POST"],
    )
