"""Accounts and their API keys."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from beatra.billing.money import Credits
from beatra.extensions import Model
from beatra.timeutil import utcnow


class Account(Model):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Model):
    """A key is `btr_<prefix>_<secret>`; only sha256(key) is stored, looked up by prefix."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Rate limits (beatra.ratelimit): NULL = the catalog's default, 0 = unlimited.
    rpm_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    stream_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Coarse: written at most once a minute per key and process (beatra.accounts.service).
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Budget: captured + held may never exceed credit_limit (NULL = no limit). The counters are
    # kept by beatra.billing.wallet in the same transaction as each wallet movement.
    credit_limit: Mapped[Decimal | None] = mapped_column(Credits(), default=None)
    spent: Mapped[Decimal] = mapped_column(Credits(), default=Decimal(0), server_default="0")
    held: Mapped[Decimal] = mapped_column(Credits(), default=Decimal(0), server_default="0")
