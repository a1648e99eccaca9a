"""Wallet (one per account) and its immutable ledger."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, event, text
from sqlalchemy.orm import Mapped, mapped_column

from beatra.billing.money import Credits
from beatra.extensions import Model
from beatra.timeutil import utcnow

# BIGINT on Postgres, INTEGER (the rowid alias, so autoincrement works) on SQLite.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class Wallet(Model):
    __tablename__ = "wallets"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    balance: Mapped[Decimal] = mapped_column(Credits(), default=Decimal(0))


class LedgerEntry(Model):
    """One money movement. Kinds: grant, reserve, capture, release, refund.

    Signed amount: what the movement did to the balance. Rows are never updated or deleted.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_account_id_id", "account_id", "id"),
                      Index("ix_ledger_usage", "account_id", "kind", "created_at"))

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Credits())
    ref: Mapped[str | None] = mapped_column(String(80), index=True, default=None)
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Attribution (NULL on rows written before migration 0007).
    hold_id: Mapped[str | None] = mapped_column(String(40), default=None)
    key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)
    capability: Mapped[str | None] = mapped_column(String(40), default=None)
    model: Mapped[str | None] = mapped_column(String(80), default=None)
    input_tokens: Mapped[int | None] = mapped_column(BigInteger(), default=None)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger(), default=None)


class Hold(Model):
    """One reservation of credits, open until settled (captured and/or released) exactly once.

    kind "chat": owned by a live request that renews `lease_until` and records `accrued` (what
    it has relayed so far, in credits); when the lease runs out the sweeper settles it for
    `accrued`. kind "task": owned by its task row (`ref` = task id), ended by the task engine;
    no lease. `settled_at IS NULL` means open; the conditional UPDATE that sets it is what makes
    settlement happen once even when a late request and the sweeper race.
    """

    __tablename__ = "holds"
    # Open holds only (a hold enters at its reserve and leaves at its settlement): every query
    # but the one by id is over open holds, and a closed hold should cost no index upkeep.
    __table_args__ = (Index("ix_holds_open", "account_id", "ref",
                            sqlite_where=text("settled_at IS NULL"),
                            postgresql_where=text("settled_at IS NULL")),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # hold_<ULID>
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Credits())
    ref: Mapped[str] = mapped_column(String(80))  # task id, or the hold id (chat)
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)
    key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    capability: Mapped[str | None] = mapped_column(String(40), default=None)
    model: Mapped[str | None] = mapped_column(String(80), default=None)
    accrued: Mapped[Decimal] = mapped_column(Credits(), default=Decimal(0))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


@event.listens_for(LedgerEntry, "before_update")
@event.listens_for(LedgerEntry, "before_delete")
def _immutable(*_args: object) -> None:
    raise RuntimeError("ledger entries are immutable")
