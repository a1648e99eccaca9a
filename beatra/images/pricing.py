"""Image meters: the hold before the call (an upper bound) and the charge after it (from the
upstream's `usage`).

Meters (catalog `pricing` keys, credits per unit):
  input_text_token    prompt tokens              (usage.input_tokens_details.text_tokens)
  input_image_token   input image tokens (i2i)   (usage.input_tokens_details.image_tokens)
  output_image_token  generated image tokens     (usage.output_tokens_details.image_tokens)
  output_text_token   generated text tokens      (usage.output_tokens_details.text_tokens)
  image_count         images returned            (a flat per-image fee; "0" when token-priced)
"""

from __future__ import annotations

import math
from typing import Any

from beatra.catalog.model import Model
from beatra.images.options import ImagePlan

# Output image tokens for one 1024x1024 image by quality (OpenAI's table, wire doc §3.3);
# the count scales with the pixel area.
OUTPUT_TOKENS_PER_MEGAPIXEL = {"low": 272, "medium": 1056, "high": 4160, "auto": 4160}
_MEGAPIXEL = 1024 * 1024
# Hold per input image when the catalog does not say (`params.reserve_input_image_tokens`).
RESERVE_INPUT_IMAGE_TOKENS = 1600
# Text tokens an upstream may count beyond the prompt itself (instructions it wraps it in).
RESERVE_TEXT_OVERHEAD_TOKENS = 100


def output_tokens(quality: str, pixels: int) -> int:
    return math.ceil(OUTPUT_TOKENS_PER_MEGAPIXEL[quality] * pixels / _MEGAPIXEL)


def hold_meters(prompt: str, plan: ImagePlan, input_images: int,
                model: Model) -> dict[str, int]:
    """At least what the call can cost: a token is at least one UTF-8 byte of the prompt; the
    output grows with the pixel area (auto: the largest size the model picks by itself)."""
    per_input = int(model.params.get("reserve_input_image_tokens", RESERVE_INPUT_IMAGE_TOKENS))
    return {
        "input_text_token": len(prompt.encode()) + RESERVE_TEXT_OVERHEAD_TOKENS,
        "input_image_token": input_images * per_input,
        "output_image_token": plan.n * output_tokens(plan.quality, plan.pixels),
        "image_count": plan.n,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def usage_meters(usage: dict[str, Any], image_count: int) -> dict[str, int] | None:
    """Meters from the upstream's usage; None when it sent none we can bill from."""
    if not usage or ("input_tokens" not in usage and "output_tokens" not in usage):
        return None
    in_details = usage.get("input_tokens_details") or {}
    out_details = usage.get("output_tokens_details") or {}
    if "text_tokens" in in_details or "image_tokens" in in_details:
        text_in, image_in = _int(in_details.get("text_tokens")), _int(
            in_details.get("image_tokens"))
    else:  # no split given: bill every input token at the (cheaper) text rate
        text_in, image_in = _int(usage.get("input_tokens")), 0
    if "image_tokens" in out_details or "text_tokens" in out_details:
        image_out, text_out = _int(out_details.get("image_tokens")), _int(
            out_details.get("text_tokens"))
    else:
        image_out, text_out = _int(usage.get("output_tokens")), 0
    return {
        "input_text_token": text_in,
        "input_image_token": image_in,
        "output_image_token": image_out,
        "output_text_token": text_out,
        "image_count": image_count,
    }


def estimated_meters(prompt: str, quality: str, pixels: list[int]) -> dict[str, int]:
    """For an upstream that sent no usage: the table price of the images actually returned
    (and the usual ~4 characters per prompt token)."""
    return {
        "input_text_token": math.ceil(len(prompt) / 4),
        "output_image_token": sum(output_tokens(quality, p) for p in pixels),
        "image_count": len(pixels),
    }
