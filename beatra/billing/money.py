"""Credits: exact decimals everywhere, never floats.

Amounts carry 9 decimal places. Postgres stores them as NUMERIC(24, 9). SQLite has no exact
decimal type (NUMERIC affinity degrades to REAL), so there the same column holds integer
nano-credits; conditional `balance >= :amount` updates stay exact on both.

The one range rule: every amount and every balance lies within ±MAX_CREDITS (10^9 credits,
$10M at 100 credits per USD). In nano-credits that is 10^18, inside SQLite's signed 64-bit
integer (9.2 x 10^18) even when a maximal amount meets a maximal balance in one UPDATE, and far
inside NUMERIC(24, 9). Amounts are checked here, before any arithmetic or binding.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

SCALE = 9
QUANTUM = Decimal(1).scaleb(-SCALE)
_NANO = Decimal(10) ** SCALE
ZERO = Decimal(0)
MAX_CREDITS = Decimal(10) ** 9


class AmountOutOfRange(ValueError):
    """An amount or balance outside ±MAX_CREDITS."""


def check_range(value: Decimal, what: str = "amount") -> Decimal:
    """`value` if it lies within ±MAX_CREDITS; raises AmountOutOfRange otherwise."""
    if not value.is_finite() or abs(value) > MAX_CREDITS:
        raise AmountOutOfRange(f"{what} must be at most {MAX_CREDITS:,} credits in magnitude")
    return value


def quantize(value: Decimal) -> Decimal:
    return value.quantize(QUANTUM, rounding=ROUND_HALF_UP)


def parse_credits(text: str | int | Decimal) -> Decimal:
    """Parse a user- or catalog-supplied amount; raises ValueError on junk."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal amount: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {text!r}")
    check_range(value)  # before quantize: 1e30 would exceed Decimal's precision there
    if value != quantize(value):
        raise ValueError(f"at most {SCALE} decimal places: {text!r}")
    return quantize(value)


def fmt(value: Decimal | None) -> str | None:
    """Wire form: plain decimal string without exponent or trailing zeros."""
    if value is None:
        return None
    text = format(quantize(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _stored(value: Any, nano: bool) -> Any:
    """An amount as the column stores it (nano-credits on SQLite); never what cannot be read
    back (out of range, or more than SCALE places: rounded)."""
    if value is None:
        return None
    if type(value) is not Decimal:
        value = Decimal(value)
    value = check_range(value).quantize(QUANTUM, rounding=ROUND_HALF_UP)
    return int(value * _NANO) if nano else value


class Credits(TypeDecorator[Decimal]):
    impl = Numeric(24, SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(24, SCALE, asdecimal=True))

    def bind_processor(self, dialect: Dialect) -> Any:
        """_stored, bound to the dialect: a chat call binds a dozen amounts, and the
        TypeDecorator's generic path (process_bind_param through two more calls) cost as
        much as the conversion."""
        nano = dialect.name == "sqlite"
        return lambda value: _stored(value, nano)

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return _stored(value, dialect.name == "sqlite")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return quantize(Decimal(int(value)) / _NANO)
        return quantize(Decimal(value))
