"""Wallet (one per account) and its immutable ledger."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, event
from sqlalchemy.orm import Mapped, mapped_column

from beatra.billing.money import Credits
from beatra.extensions import db
from beatra.timeutil import utcnow

# BIGINT on Postgres, INTEGER (the rowid alias, so autoincrement works) on SQLite.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class Wallet(db.Model):
    __tablename__ = "wallets"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    balance: Mapped[Decimal] = mapped_column(Credits(), default=Decimal(0))


class LedgerEntry(db.Model):
    """One money movement. Kinds: grant, reserve, capture, release, refund.

    Signed amount: what the movement did to the balance. Rows are never updated or deleted.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Credits())
    ref: Mapped[str | None] = mapped_column(String(80), index=True, default=None)
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@event.listens_for(LedgerEntry, "before_update")
@event.listens_for(LedgerEntry, "before_delete")
def _immutable(*_args: object) -> None:
    raise RuntimeError("ledger entries are immutable")
