"""UTC timestamps and their wire form."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; we only ever store UTC
        value = value.replace(tzinfo=UTC)
    return value.isoformat().replace("+00:00", "Z")
