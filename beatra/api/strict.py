"""JSON-strict marshmallow fields: a value of the wrong JSON type is refused, never coerced.

marshmallow's defaults turn "yes"/1 into True, "100" into 100 and "0.5" into 0.5; the contract
says integer, boolean and number, so `"stream": "yes"` or `"max_tokens": "100"` are 422.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields

# Ceiling for any requested output-token count: above every catalogued model's output limit,
# and small enough that reserve arithmetic (tokens x price) stays exact and in range.
MAX_OUTPUT_TOKENS = 1_000_000


class StrictInteger(fields.Integer):
    """A JSON integer only (not 1.0, "1" or true)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true or false only."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Must be true or false.")
        return value


class StrictFloat(fields.Float):
    """A JSON number only (not "0.5" or true)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Must be a number.")
        return super()._deserialize(value, attr, data, **kwargs)


def token_count(value: int) -> None:
    """Validator for a requested token count: 1 to MAX_OUTPUT_TOKENS."""
    if not 1 <= value <= MAX_OUTPUT_TOKENS:
        raise ValidationError(f"Must be between 1 and {MAX_OUTPUT_TOKENS}.")
