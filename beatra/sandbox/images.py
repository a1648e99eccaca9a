"""OpenAI Images API (GPT Image): ``/images/generations`` (JSON) and ``/images/edits``."""

from __future__ import annotations

import base64
import io
import re
import time
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request
from PIL import Image, UnidentifiedImageError

from . import directives, media
from .common import (
    has_bearer,
    json_body,
    json_response,
    openai_auth_error,
    openai_error,
    openai_forced_error,
    sleep_for,
)
from .directives import Directives

bp = Blueprint("sandbox_images", __name__, url_prefix="/openai/v1/images")

# Output image tokens per 1024x1024 image (community-derived, wire doc 3.3).
OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160}
INPUT_IMAGE_TOKENS = 323  # per input image for edits; arbitrary but stable
MAX_EDIT_IMAGES = 16
MAX_SIDE = 3840
_SIZE_RE = re.compile(r"^(\d{1,5})x(\d{1,5})$")


def _bad(message: str, param: str | None = None, code: str | None = "invalid_value") -> Response:
    return openai_error(400, message, "invalid_request_error", code, param)


@dataclass
class ImageParams:
    model: str
    prompt: str
    n: int
    width: int
    height: int
    quality: str
    output_format: str
    background: str
    compression: int


def _is_gpt_image(model: str) -> bool:
    return model.lower().startswith(("gpt-image", "chatgpt-image"))


def _parse_size(size: str) -> tuple[int, int] | None:
    """``auto`` or any WxH with sides divisible by 16, within 3840 and a 3:1 aspect."""
    if size == "auto":
        return 1024, 1024
    match = _SIZE_RE.match(size)
    if not match:
        return None
    w, h = int(match.group(1)), int(match.group(2))
    if w % 16 or h % 16 or not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE):
        return None
    if max(w, h) > 3 * min(w, h):
        return None
    return w, h


def _params(fields: dict[str, Any]) -> ImageParams | Response:
    model = fields.get("model")
    if not model or not isinstance(model, str):
        return _bad("you must provide a model parameter", "model", "missing_required_parameter")
    prompt = fields.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return _bad("'prompt' is a required property", "prompt", "missing_required_parameter")
    if len(prompt) > 32000:
        return _bad("'prompt' is too long: maximum 32000 characters.", "prompt")
    if fields.get("response_format") is not None and _is_gpt_image(model):
        return _bad("Unknown parameter: 'response_format'.", "response_format",
                    "unknown_parameter")
    if fields.get("response_format") not in (None, "b64_json"):
        return _bad("The sandbox only returns b64_json.", "response_format")
    try:
        n = int(fields.get("n") or 1)
    except (TypeError, ValueError):
        n = 0
    if not 1 <= n <= 10:
        return _bad(f"Invalid 'n': {fields.get('n')!r}. Expected 1 to 10.", "n")
    size = str(fields.get("size") or "auto")
    dims = _parse_size(size)
    if dims is None:
        return _bad(f"Invalid size '{size}'. Width and height must be multiples of 16, at "
                    f"most {MAX_SIDE}, with an aspect ratio of at most 3:1 (or 'auto').",
                    "size")
    quality = str(fields.get("quality") or "auto")
    if quality not in ("low", "medium", "high", "auto"):
        return _bad(f"Invalid quality '{quality}'.", "quality")
    fmt = str(fields.get("output_format") or "png")
    if fmt not in media.IMAGE_FORMATS:
        return _bad(f"Invalid output_format '{fmt}'.", "output_format")
    background = str(fields.get("background") or "auto")
    if background not in ("transparent", "opaque", "auto"):
        return _bad(f"Invalid background '{background}'.", "background")
    if background == "transparent" and fmt == "jpeg":
        return _bad("Transparent background requires output_format png or webp.",
                    "background")
    try:
        raw = fields.get("output_compression")
        compression = 100 if raw is None or raw == "" else int(raw)
    except (TypeError, ValueError):
        compression = -1
    if not 0 <= compression <= 100:
        return _bad("'output_compression' must be between 0 and 100.", "output_compression")
    if compression < 100 and fmt == "png":
        return _bad("Compression less than 100 is not supported for PNG output format.",
                    "output_compression")
    return ImageParams(
        model=model, prompt=prompt, n=n, width=dims[0], height=dims[1],
        quality="medium" if quality == "auto" else quality, output_format=fmt,
        background="transparent" if background == "transparent" else "opaque",
        compression=compression,
    )


def _policy_error() -> Response:
    return openai_error(
        400,
        "Your request was rejected as a result of our safety system. Your request may "
        "contain content that is not allowed by our safety system.",
        "image_generation_user_error",
        "moderation_blocked",
    )


def _result(p: ImageParams, d: Directives, input_images: int) -> Response:
    seed = media.seed_of(directives.clean(p.prompt))
    data = []
    for i in range(p.n):
        raw = media.image_bytes(p.width, p.height, p.output_format, seed + 37 * i,
                                p.background == "transparent", p.compression)
        data.append({"b64_json": base64.b64encode(raw).decode()})
    per_image = round(OUTPUT_TOKENS[p.quality] * p.width * p.height / (1024 * 1024))
    text_tokens = len(directives.clean(p.prompt).split())
    image_in = INPUT_IMAGE_TOKENS * input_images
    output_tokens = per_image * p.n
    payload = {
        "created": int(time.time()),
        "background": p.background,
        "output_format": p.output_format,
        "quality": p.quality,
        "size": f"{p.width}x{p.height}",
        "data": data,
        "usage": {
            "input_tokens": text_tokens + image_in,
            "input_tokens_details": {"image_tokens": image_in, "text_tokens": text_tokens},
            "output_tokens": output_tokens,
            "output_tokens_details": {"image_tokens": output_tokens, "text_tokens": 0},
            "total_tokens": text_tokens + image_in + output_tokens,
        },
    }
    return json_response(payload, 200, None, d)


def _faults(prompt: Any) -> tuple[Directives, Response | None]:
    d = directives.parse([prompt if isinstance(prompt, str) else ""])
    sleep_for(d)
    forced = openai_forced_error(d)
    if forced is None and d.policy:
        forced = _policy_error()
    return d, forced


@bp.post("/generations")
def generations() -> Response:
    if not has_bearer():
        return openai_auth_error()
    body = json_body()
    if body is None:
        return _bad("We could not parse the JSON body of your request.", None, None)
    d, forced = _faults(body.get("prompt"))
    if forced is not None:
        return forced
    params = _params(body)
    if isinstance(params, Response):
        return params
    return _result(params, d, 0)


def _check_image(data: bytes, name: str) -> Image.Image | str:
    """Decoded image, or the reason it is unusable."""
    try:
        img = Image.open(io.BytesIO(data))
        img.verify()
        img = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return f"Invalid image file '{name}': could not be decoded."
    if img.format not in ("PNG", "JPEG", "WEBP"):
        return f"Invalid image file '{name}': unsupported format {img.format}."
    return img


@bp.post("/edits")
def edits() -> Response:
    if not has_bearer():
        return openai_auth_error()
    fields: dict[str, Any] = request.form.to_dict()
    fields.setdefault("model", "gpt-image-1.5")  # the real edits endpoint default
    d, forced = _faults(fields.get("prompt"))
    if forced is not None:
        return forced
    files = request.files.getlist("image[]") + request.files.getlist("image")
    if not files:
        return _bad("'image' is a required property", "image", "missing_required_parameter")
    if len(files) > MAX_EDIT_IMAGES:
        return _bad(f"Too many images: {len(files)}. At most {MAX_EDIT_IMAGES} are allowed.",
                    "image")
    first: Image.Image | None = None
    for f in files:
        checked = _check_image(f.read(), f.filename or "image")
        if isinstance(checked, str):
            return _bad(checked, "image", "invalid_image_file")
        first = first or checked
    mask = request.files.get("mask")
    if mask is not None and first is not None:
        checked = _check_image(mask.read(), mask.filename or "mask")
        if isinstance(checked, str) or checked.format != "PNG":
            return _bad("Invalid mask: must be a PNG image.", "mask", "invalid_image_file")
        if checked.size != first.size:
            return _bad("Invalid mask: mask and image must have the same dimensions.", "mask")
    params = _params(fields)
    if isinstance(params, Response):
        return params
    return _result(params, d, len(files))
