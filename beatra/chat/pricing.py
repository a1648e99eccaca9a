"""What a chat call may cost (the reserve) and what it did cost (the capture).

Catalog meters (credits per token): input_token, cached_input_token (default: input_token),
output_token, reasoning_token (default: output_token).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from weakref import WeakKeyDictionary

from beatra.billing.money import ZERO, quantize
from beatra.catalog.model import Model

# Input-side token allowances for parts whose size in tokens is not their size in bytes.
IMAGE_PART_TOKENS = 2_000  # above any OpenAI-style per-image charge at high detail
FILE_PART_TOKENS = 100_000
_MESSAGE_OVERHEAD = 8


@dataclass(frozen=True)
class ChatPrices:
    input: Decimal
    cached_input: Decimal
    output: Decimal
    reasoning: Decimal

    @classmethod
    def of(cls, model: Model) -> ChatPrices:
        p = model.pricing
        inp = p.get("input_token", ZERO)
        out = p.get("output_token", ZERO)
        return cls(inp, p.get("cached_input_token", inp), out, p.get("reasoning_token", out))


_prices: WeakKeyDictionary[Model, ChatPrices] = WeakKeyDictionary()


def prices_for(model: Model) -> ChatPrices:
    prices = _prices.get(model)
    if prices is None:
        prices = _prices[model] = ChatPrices.of(model)
    return prices


def _text_bytes(value: Any) -> int:
    return len(value.encode()) if isinstance(value, str) else 0


def prompt_token_bound(request: dict[str, Any]) -> int:
    """An upper bound on prompt tokens: a byte-level BPE token is at least one UTF-8 byte, so
    text bytes bound text tokens; images, audio and files get fixed allowances."""
    total = 0
    for message in request["messages"]:
        total += _MESSAGE_OVERHEAD
        content = message.get("content")
        if isinstance(content, str):
            total += _text_bytes(content)
        elif isinstance(content, list):
            for part in content:
                kind = part.get("type")
                if kind == "text":
                    total += _text_bytes(part.get("text"))
                elif kind == "image_url":
                    total += IMAGE_PART_TOKENS
                elif kind == "input_audio":
                    total += len(part["input_audio"].get("data", ""))  # base64 ≥ tokens
                else:
                    total += FILE_PART_TOKENS
        for call in message.get("tool_calls") or []:
            fn = call.get("function", {})
            total += _text_bytes(fn.get("name")) + _text_bytes(fn.get("arguments")) + 8
        total += _text_bytes(message.get("reasoning_content"))
    for tool in request.get("tools") or []:
        total += len(repr(tool))
    fmt = request.get("response_format")
    if isinstance(fmt, dict):
        total += len(repr(fmt))
    return total


def reserve_amount(request: dict[str, Any], model: Model, output_limit: int) -> Decimal:
    prices = prices_for(model)
    choices = request.get("n") or 1
    input_price = max(prices.input, prices.cached_input)
    output_price = max(prices.output, prices.reasoning)
    bound = prompt_token_bound(request) * input_price + output_limit * choices * output_price
    return quantize(bound)


@dataclass(frozen=True)
class UsageCounts:
    prompt: int = 0
    cached: int = 0
    completion: int = 0
    reasoning: int = 0


def usage_counts(usage: dict[str, Any]) -> UsageCounts:
    """Read an OpenAI-style usage object defensively (details are optional everywhere)."""
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return UsageCounts(prompt, min(cached, prompt), completion, min(reasoning, completion))


def charge(counts: UsageCounts, model: Model) -> Decimal:
    p = prices_for(model)
    amount = (
        (counts.prompt - counts.cached) * p.input
        + counts.cached * p.cached_input
        + (counts.completion - counts.reasoning) * p.output
        + counts.reasoning * p.reasoning
    )
    return quantize(amount)


def estimate_tokens(chars: int) -> int:
    """Tokens for text we relayed when the upstream reported no usage (~4 characters each)."""
    return (chars + 3) // 4
