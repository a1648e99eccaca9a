"""Deterministic synthetic chat completions: text, reasoning, tool calls, usage, logprobs.

Token model: one token per whitespace-separated word (directives stripped first).
prompt_tokens = words over all message text + 3 per message; completion_tokens =
reasoning words + answer words (so it includes reasoning_tokens, as OpenAI's does).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from . import directives
from .common import new_id
from .directives import Directives
from .schema_fill import placeholder

FILLER = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit",
          "sed", "do", "eiusmod", "tempor"]
REASONING_FILLER = ["the", "request", "step", "carefully"]
_TOKEN_RE = re.compile(r"\s*\S+|\s+")

# Reasoning output styles.
STYLE_NONE = "none"
STYLE_REASONING_CONTENT = "reasoning_content"  # DeepSeek/Kimi/GLM-4.5+/Qwen field
STYLE_OPENROUTER = "reasoning"  # OpenRouter's normalised field
STYLE_INLINE = "inline"  # GLM-Z1: <think>…</think> inside content


def reasoning_style(model: str, body: dict[str, Any], provider: str = "openai") -> str:
    name = model.lower()
    if "or-reasoning" in name:
        return STYLE_OPENROUTER
    if "z1" in name:
        return STYLE_INLINE
    thinking = body.get("thinking")
    thinking_type = thinking.get("type") if isinstance(thinking, dict) else None
    if thinking_type == "disabled" or body.get("enable_thinking") is False:
        return STYLE_NONE
    if any(k in name for k in ("reasoner", "deepseek", "kimi", "thinking")):
        return STYLE_REASONING_CONTENT
    if thinking_type == "enabled" or body.get("enable_thinking") is True:
        return STYLE_REASONING_CONTENT
    if provider == "qwen" and ("qwen3" in name or "qwq" in name):
        return STYLE_REASONING_CONTENT  # open-source Qwen3 thinks unless told not to
    return STYLE_NONE


def is_reasoning_model(model: str) -> bool:
    """Models that reject max_tokens and non-default sampling parameters."""
    name = model.lower()
    return name.startswith(("o1", "o3", "o4", "gpt-5")) or "reasoner" in name


def message_text(message: Any) -> str:
    """Text of a message's content (string or list of text parts), directives stripped."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return directives.clean(content)
    if isinstance(content, list):
        parts = [
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text")
        ]
        return directives.clean(" ".join(t for t in parts if isinstance(t, str)))
    return ""


def raw_user_texts(messages: list[Any]) -> list[str]:
    """Unstripped text of every user message, for directive parsing."""
    out: list[str] = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out += [p.get("text", "") for p in content if isinstance(p, dict)]
    return [t for t in out if isinstance(t, str)]


def count_prompt_tokens(messages: list[Any]) -> int:
    return sum(len(message_text(m).split()) + 3 for m in messages)


def fit_words(words: list[str], n: int) -> list[str]:
    if len(words) >= n:
        return words[:n]
    pad = [FILLER[i % len(FILLER)] for i in range(n - len(words))]
    return words + pad


def split_text(text: str, n: int | None) -> list[str]:
    """Split into stream pieces: one per token by default, else exactly n groups.

    ``"".join(pieces) == text`` always holds, so clients can verify reassembly.
    """
    tokens = _TOKEN_RE.findall(text) or ([text] if text else [])
    if n is None or not tokens:
        return tokens
    n = max(1, n)
    if n > len(tokens):  # more chunks than words: split by characters instead
        n = min(n, len(text))
        size, extra = divmod(len(text), n)
        out, pos = [], 0
        for i in range(n):
            step = size + (1 if i < extra else 0)
            out.append(text[pos:pos + step])
            pos += step
        return out
    size, extra = divmod(len(tokens), n)
    out, pos = [], 0
    for i in range(n):
        step = size + (1 if i < extra else 0)
        out.append("".join(tokens[pos:pos + step]))
        pos += step
    return out


def split_inline_think(text: str) -> list[str]:
    """Token pieces with the <think> and </think> tags cut across chunk boundaries."""
    out: list[str] = []
    for piece in split_text(text, None):
        for tag, cut in (("<think>", 4), ("</think>", 4)):
            pos = piece.find(tag)
            if pos >= 0:
                out.append(piece[: pos + cut])
                piece = piece[pos + cut:]
                break
        if piece:
            out.append(piece)
    return out


def logprob_content(text: str, top_n: int, start: int = 0) -> list[dict[str, Any]]:
    """OpenAI ``logprobs.content`` entries, one per word token of ``text``."""
    entries = []
    for i, token in enumerate(_TOKEN_RE.findall(text), start):
        lp = -round(0.0001 + 0.01 * ((i * 7) % 13), 6)
        tops = [{"token": token, "logprob": lp, "bytes": list(token.encode())}]
        for k in range(1, top_n):
            alt = f" alt{k}"
            tops.append({"token": alt, "logprob": round(lp - 1.5 * k, 6),
                         "bytes": list(alt.encode())})
        entries.append({"token": token, "logprob": lp, "bytes": list(token.encode()),
                        "top_logprobs": tops[:top_n]})
    return entries


@dataclass
class Choice:
    index: int
    reasoning: str = ""  # reasoning text (separate field or inside <think>)
    content: str | None = None  # full content as sent (incl. <think> for inline)
    tool_call: dict[str, Any] | None = None
    finish_reason: str = "stop"
    completion_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass
class Plan:
    model: str
    style: str
    prompt_tokens: int
    cached_tokens: int
    logprobs: bool = False
    top_logprobs: int = 0
    service_tier: str = "default"
    choices: list[Choice] = field(default_factory=list)
    id: str = field(default_factory=lambda: new_id("chatcmpl-", 29))
    created: int = field(default_factory=lambda: int(time.time()))
    system_fingerprint: str = "fp_sandbox0001"

    def usage(self) -> dict[str, Any]:
        completion = sum(c.completion_tokens for c in self.choices)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": sum(c.reasoning_tokens for c in self.choices),
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function to call, or None when the turn should be answered in text."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice", "auto")
    messages = body.get("messages") or []
    if not tools or choice == "none":
        return None
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
        return None  # the model answers from the tool result
    functions = [t.get("function") or {} for t in tools if t.get("type", "function") == "function"]
    target = functions[0] if functions else None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        target = next((f for f in functions if f.get("name") == wanted), target)
    if not target:
        return None
    args = placeholder(target.get("parameters") or {"type": "object", "properties": {}})
    return {
        "id": new_id("call_", 24),
        "type": "function",
        "function": {"name": target.get("name", "tool"), "arguments": json.dumps(args)},
    }


def _answer_words(model: str, messages: list[Any], index: int) -> list[str]:
    head = ["Sandbox", "reply"] if index == 0 else ["Sandbox", "alternative", str(index + 1)]
    head += ["from", f"{model}:"]
    last = messages[-1] if messages else {}
    if isinstance(last, dict) and last.get("role") == "tool":
        return [*head, "tool", "result", "received:", *message_text(last).split()[:8]]
    user = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    words = message_text(user[-1]).split()[:12] if user else []
    return head + (words or ["(no", "text)"])


def _reasoning_words(messages: list[Any]) -> list[str]:
    user = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    topic = message_text(user[-1]).split()[:4] if user else []
    return ["Let", "me", "think", "about", *(topic + REASONING_FILLER)[:4]]


def _json_answer(body: dict[str, Any], text: str) -> str | None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return json.dumps({"reply": text})
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
        return json.dumps(placeholder(schema))
    return None


def build_plan(body: dict[str, Any], d: Directives, provider: str = "openai") -> Plan:
    model = str(body["model"])
    messages = body["messages"]
    style = reasoning_style(model, body, provider)
    prompt_tokens = count_prompt_tokens(messages)
    tier = body.get("service_tier")
    plan = Plan(
        model=model,
        style=style,
        prompt_tokens=prompt_tokens,
        cached_tokens=min(d.cached, prompt_tokens),
        logprobs=body.get("logprobs") is True,
        top_logprobs=int(body.get("top_logprobs") or 0),
        service_tier={"fast": "priority", "flex": "flex", "priority": "priority",
                      "scale": "scale"}.get(tier if isinstance(tier, str) else "", "default"),
    )
    cap = body.get("max_completion_tokens")
    if cap is None:
        cap = body.get("max_tokens")
    cap = cap if isinstance(cap, int) and cap >= 0 else None
    for index in range(int(body.get("n") or 1)):
        plan.choices.append(_build_choice(body, d, style, index, cap))
    return plan


def _build_choice(body: dict[str, Any], d: Directives, style: str, index: int,
                  cap: int | None) -> Choice:
    messages = body["messages"]
    choice = Choice(index=index)
    reasoning = _reasoning_words(messages) if style != STYLE_NONE else []
    call = _tool_call(body)
    if call is not None:
        choice.tool_call = call
        choice.finish_reason = "tool_calls"
        choice.reasoning = " ".join(reasoning)
        choice.reasoning_tokens = len(reasoning)
        choice.completion_tokens = len(reasoning) + len(call["function"]["arguments"].split())
        if style == STYLE_INLINE:  # Z1 keeps its thought in content even beside a call
            choice.content = f"<think>{choice.reasoning}</think>"
        return choice
    words = _answer_words(str(body["model"]), messages, index)
    if d.tokens is not None:
        words = fit_words(words, d.tokens)
    json_text = _json_answer(body, " ".join(words))
    answer = json_text.split(" ") if json_text is not None else words
    if cap is not None and len(reasoning) + len(answer) > cap:
        choice.finish_reason = "length"
        reasoning_done = len(reasoning) <= cap
        reasoning = reasoning[:cap]
        answer = answer[: cap - len(reasoning)]
    else:
        reasoning_done = True
    choice.reasoning = " ".join(reasoning)
    choice.reasoning_tokens = len(reasoning)
    choice.completion_tokens = len(reasoning) + len(answer)
    text = " ".join(answer)
    if style == STYLE_INLINE:
        text = f"<think>{choice.reasoning}" + (f"</think>\n\n{text}" if reasoning_done else "")
    choice.content = text
    return choice
