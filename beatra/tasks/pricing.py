"""Pricing a task's usage: meters times the price snapshot taken when the task was submitted.

Meter names are the catalog's pricing keys (credits per unit). A meter the catalog does not
price is free and still shows as a usage line. Every amount is a Decimal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from beatra.billing.money import ZERO, fmt, quantize
from beatra.catalog.model import Model

# Display units for UsageLine.unit; unknown meters default to their last word.
UNITS = {
    "input_text_token": "token",
    "input_image_token": "token",
    "output_image_token": "token",
    "output_text_token": "token",
    "image_count": "image",
}


@dataclass(frozen=True)
class PriceTable:
    prices: dict[str, Decimal]
    credits_per_usd: Decimal

    @classmethod
    def of(cls, model: Model, credits_per_usd: Decimal) -> PriceTable:
        return cls(dict(model.pricing), credits_per_usd)

    def to_state(self) -> dict[str, Any]:
        return {"prices": {k: fmt(v) for k, v in self.prices.items()},
                "credits_per_usd": fmt(self.credits_per_usd)}

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> PriceTable:
        return cls({k: Decimal(v) for k, v in data["prices"].items()},
                   Decimal(data["credits_per_usd"]))

    def usd(self, credits: Decimal) -> Decimal:
        return quantize(credits / self.credits_per_usd)


def unit_of(meter: str) -> str:
    return UNITS.get(meter, meter.rsplit("_", 1)[-1])


def price(meters: Mapping[str, Decimal | int], table: PriceTable) -> tuple[list[dict[str, Any]],
                                                                         Decimal]:
    """UsageLine dicts (wire form) and their total in credits."""
    lines: list[dict[str, Any]] = []
    total = ZERO
    for meter, quantity in meters.items():
        qty = Decimal(quantity)
        if qty <= 0:
            continue
        billed = quantize(qty * table.prices.get(meter, ZERO))
        total += billed
        lines.append({
            "meter": meter,
            "quantity": fmt(qty),
            "unit": unit_of(meter),
            "billed_amount_credits": fmt(billed),
            "billed_amount_credits_usd_reference": fmt(table.usd(billed)),
        })
    return lines, total


def estimate(meters: Mapping[str, Decimal | int], table: PriceTable) -> Decimal:
    """The hold for an upper bound of the meters (what `price` would charge for them)."""
    return price(meters, table)[1]
