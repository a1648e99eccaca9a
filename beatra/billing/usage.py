"""What an account has spent, read from the ledger: its overview and usage sums.

Usage counts capture rows only (one per settled chat call or task): `credits` is minus the sum
of their amounts, summed in SQL on the Credits column (integer nano-credits on SQLite, NUMERIC
on Postgres), so it equals what the ledger captured to the last digit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement

from beatra.accounts.models import Account, ApiKey
from beatra.billing.models import Hold, LedgerEntry, Wallet
from beatra.billing.money import ZERO
from beatra.extensions import db

GROUPS = ("day", "model", "key", "capability")
UNKNOWN = "unknown"  # rows written before attribution existed (migration 0007)


@dataclass(frozen=True)
class Overview:
    account: Account
    balance: Decimal
    reserved: Decimal
    key: ApiKey


def overview(account_id: str, key_id: str) -> Overview | None:
    row = db.session.execute(
        select(Account, Wallet.balance).join(Wallet, Wallet.account_id == Account.id)
        .where(Account.id == account_id)).first()
    key = db.session.get(ApiKey, key_id)
    if row is None or key is None or key.account_id != account_id:
        return None
    reserved = db.session.execute(
        select(func.sum(Hold.amount))
        .where(Hold.account_id == account_id, Hold.settled_at.is_(None))).scalar_one()
    return Overview(row[0], row[1], reserved or ZERO, key)


@dataclass(frozen=True)
class UsageRow:
    group: str
    requests: int
    credits: Decimal
    input_tokens: int
    output_tokens: int


def _group_column(group_by: str) -> ColumnElement[Any]:
    if group_by == "day":
        created = LedgerEntry.created_at
        if db.engine.dialect.name == "postgresql":
            # timestamptz → the UTC calendar day, whatever the session's time zone.
            return func.to_char(func.timezone("UTC", created), "YYYY-MM-DD")
        return func.substr(created, 1, 10)  # SQLite stores 'YYYY-MM-DD HH:MM:SS…' in UTC
    return {"model": LedgerEntry.model, "key": LedgerEntry.key_id,
            "capability": LedgerEntry.capability}[group_by].expression


def usage(account_id: str, start: datetime, end: datetime, group_by: str,
          *, end_inclusive: bool = True) -> list[UsageRow]:
    """Captures of `account_id` in [start, end] (or [start, end) when not end_inclusive),
    grouped by `group_by` (one of GROUPS), in group order."""
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {GROUPS}")
    group = _group_column(group_by).label("grp")
    created = LedgerEntry.created_at
    query = (
        select(group, func.count(), func.sum(LedgerEntry.amount),
               func.coalesce(func.sum(LedgerEntry.input_tokens), 0),
               func.coalesce(func.sum(LedgerEntry.output_tokens), 0))
        .where(LedgerEntry.account_id == account_id, LedgerEntry.kind == "capture",
               created >= start, created <= end if end_inclusive else created < end)
        .group_by(group).order_by(group)
    )
    rows = [UsageRow(grp if grp is not None else UNKNOWN, int(count), -(total or ZERO),
                     int(tokens_in), int(tokens_out))
            for grp, count, total, tokens_in, tokens_out in db.session.execute(query)]
    return sorted(rows, key=lambda row: row.group)  # one order on both databases (NULLs)
