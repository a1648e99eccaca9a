"""Music meters (catalog `pricing` keys, credits per unit):

  song          tracks delivered (MiniMax: 1 per task; Suno: 2 per task, sunoapi always makes 2)
  audio_second  seconds of audio delivered (probed from the stored files)

The hold is the most a task can cost: every song the request makes, each at the model's longest
track (`limits.max_seconds`, default 300 for MiniMax and 480 for Suno).
"""

from __future__ import annotations

from decimal import ROUND_UP, Decimal

from beatra.catalog.model import Model
from beatra.music.options import MINIMAX, MusicPlan

DEFAULT_MAX_SECONDS = {MINIMAX: 300, "suno": 480}


def max_seconds(model: Model, family: str) -> int:
    value = model.limits.get("max_seconds")
    return value if isinstance(value, int) and value > 0 else DEFAULT_MAX_SECONDS[family]


def hold_meters(plan: MusicPlan, model: Model) -> dict[str, Decimal | int]:
    return {"song": plan.songs, "audio_second": plan.songs * max_seconds(model, plan.family)}


def audio_seconds(durations_ms: list[int]) -> Decimal:
    """Total seconds, rounded up to the millisecond."""
    return (Decimal(sum(durations_ms)) / 1000).quantize(Decimal("0.001"), rounding=ROUND_UP)


def usage_meters(durations_ms: list[int]) -> dict[str, Decimal | int]:
    return {"song": len(durations_ms), "audio_second": audio_seconds(durations_ms)}
