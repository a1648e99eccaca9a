"""Our image options → what the upstream is asked for, with a warning for every change.

quality:       standard → "medium", hd → "high" (GPT Image's low/medium/high scale).
aspect_ratio:  an exact ratio with sides divisible by 16 and the long side 1536 (1024 for
               1:1); `auto` → "auto" (the model picks; for image-to-image it follows the input).
output_format: passed through (png, jpeg, webp).
n:             passed through, unless the catalog caps it (`limits.max_n`) → option_clamped.

A catalog model may restrict sizes (`params.sizes: ["1024x1024", "1536x1024", …]`, e.g. for
gpt-image-1-class upstreams); the closest allowed aspect is then used → option_clamped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from beatra.catalog.model import Model

QUALITY = {"standard": "medium", "hd": "high"}
SIZES = {
    "1:1": (1024, 1024),
    "16:9": (1536, 864),
    "9:16": (864, 1536),
    "4:3": (1536, 1152),
    "3:4": (1152, 1536),
    "2:1": (1536, 768),
}
# What "auto" may cost: the largest standard size a GPT Image model picks by itself.
AUTO_PIXELS = 1536 * 1024


@dataclass(frozen=True)
class ImagePlan:
    """What each upstream call asks for; stored in the task state at submission."""

    size: str
    quality: str
    output_format: str
    n: int

    @property
    def pixels(self) -> int:
        """Pixels per image for the reserve estimate (auto: the largest it may pick)."""
        if self.size == "auto":
            return AUTO_PIXELS
        w, h = (int(v) for v in self.size.split("x"))
        return w * h

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> ImagePlan:
        return cls(**data)


def warning(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "field": field}


def _parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    return int(w), int(h)


def _closest_allowed(ratio: str, allowed: list[str]) -> str:
    w, h = SIZES[ratio]
    want = w / h

    def distance(size: str) -> tuple[float, int]:
        aw, ah = _parse_size(size)
        return abs(aw / ah - want), -(aw * ah)

    return min(allowed, key=distance)


def plan(request: dict[str, Any], model: Model) -> tuple[ImagePlan, list[dict[str, Any]]]:
    warnings: list[dict[str, Any]] = []
    n = request["n"]
    max_n = model.limits.get("max_n")
    if isinstance(max_n, int) and n > max_n:
        warnings.append(warning("option_clamped", f"n={n} is more than {model.id} makes per "
                                f"request; {max_n} images will be generated.", "n"))
        n = max_n
    ratio = request["aspect_ratio"]
    if ratio == "auto":
        size = "auto"
    else:
        w, h = SIZES[ratio]
        size = f"{w}x{h}"
        allowed = model.params.get("sizes")
        if allowed and size not in allowed:
            size = _closest_allowed(ratio, list(allowed))
            warnings.append(warning("option_clamped", f"{model.id} cannot make {ratio} images; "
                                    f"{size} is the closest size it makes.", "aspect_ratio"))
    return ImagePlan(size=size, quality=QUALITY[request["quality"]],
                     output_format=request["output_format"], n=n), warnings
