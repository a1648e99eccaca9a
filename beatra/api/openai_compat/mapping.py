"""OpenAI Images API parameters → the beatra image request the task service takes.

Every OpenAI value either maps to one beatra option, is accepted because it changes nothing
(its default, `user`), or is refused with a 422 naming the field: a parameter beatra cannot
honour is never dropped silently. Size maps to the nearest aspect ratio beatra makes; when
that is not the exact size asked for, a `size_mapped` warning says so in the response.
"""

from __future__ import annotations

from typing import Any

from beatra.api.images.schemas import ASPECT_RATIOS
from beatra.errors import invalid
from beatra.images.options import SIZES, warning

# OpenAI quality → beatra quality (standard → upstream "medium", hd → "high").
QUALITY = {"auto": "standard", "standard": "standard", "medium": "standard",
           "hd": "hd", "high": "hd"}
RESPONSE_FORMATS = ("url", "b64_json")
# Parameters accepted only at the value that changes nothing.
_ONLY_DEFAULT = {"background": ("auto", "opaque"), "moderation": ("auto",),
                 "input_fidelity": ("low",), "style": ("vivid", "natural")}
_REFUSED = ("mask", "output_compression", "partial_images", "markup", "svg")


def aspect_ratio(size: str | None) -> tuple[str, list[dict[str, Any]]]:
    """`WIDTHxHEIGHT` or `auto` → a beatra aspect ratio (nearest), plus a warning if inexact."""
    if size in (None, "auto"):
        return "auto", []
    width, sep, height = size.partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) and int(height)):
        raise invalid("size must be 'auto' or WIDTHxHEIGHT, e.g. 1024x1024.", "/size")
    want = int(width) / int(height)
    ratio = min((r for r in ASPECT_RATIOS if r != "auto"),
                key=lambda r: abs(SIZES[r][0] / SIZES[r][1] - want))
    made = "{}x{}".format(*SIZES[ratio])
    if made == size:
        return ratio, []
    return ratio, [warning("size_mapped", f"size {size} was mapped to aspect ratio {ratio} "
                                          f"({made}).", "size")]


def _check_unsupported(params: dict[str, Any]) -> None:
    for name in _REFUSED:
        if params.get(name) is not None:
            raise invalid(f"{name} is not supported by this gateway.", f"/{name}")
    for name, allowed in _ONLY_DEFAULT.items():
        value = params.get(name)
        if value is not None and value not in allowed:
            raise invalid(f"{name}={value!r} is not supported; leave it out or use "
                          f"{' or '.join(map(repr, allowed))}.", f"/{name}")
    if params.get("stream"):
        raise invalid("stream is not supported: the images are returned when they are done.",
                      "/stream")


def beatra_request(params: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The TextToImageRequest fields for validated OpenAI `params`, plus mapping warnings."""
    _check_unsupported(params)
    quality = params.get("quality") or "auto"
    if quality not in QUALITY:
        raise invalid(f"quality must be one of {', '.join(QUALITY)} ('low' is not offered).",
                      "/quality")
    ratio, warnings = aspect_ratio(params.get("size"))
    request = {
        "model": params.get("model") or "auto",
        "prompt": params["prompt"],
        "quality": QUALITY[quality],
        "aspect_ratio": ratio,
        "output_format": params.get("output_format") or "png",
        "n": params.get("n") or 1,
    }
    return request, warnings
