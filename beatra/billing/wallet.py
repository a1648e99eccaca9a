"""Wallet movements: each one conditional SQL plus ledger rows, in one short transaction.

reserve:  balance -= R  only if balance >= R        (ledger: reserve -R)
settle:   balance += R - C, with C capped at R      (ledger: release +R, capture -C)
refund:   balance += R                               (ledger: refund +R)
grant:    balance += A                               (ledger: grant +A)

No read-modify-write in Python: concurrent reserves can never overdraw.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from beatra.billing.models import LedgerEntry, Wallet
from beatra.billing.money import ZERO, Credits, check_range, quantize
from beatra.errors import ApiError
from beatra.extensions import db
from beatra.timeutil import utcnow

_wallets = Wallet.__table__
_ledger = LedgerEntry.__table__


class InsufficientBalance(ApiError):
    def __init__(self, needed: Decimal) -> None:
        super().__init__(
            402,
            "insufficient_balance",
            "Account balance is too low for this request.",
            details={"required_credits": format(needed, "f")},
        )


def _entry(account_id: str, kind: str, amount: Decimal, ref: str | None, reason: str | None):
    return {
        "account_id": account_id,
        "kind": kind,
        "amount": amount,
        "ref": ref,
        "reason": reason,
        "created_at": utcnow(),
    }


def create_wallet(account_id: str) -> None:
    db.session.execute(insert(_wallets).values(account_id=account_id, balance=ZERO))


@contextmanager
def _transaction(own: bool) -> Iterator[Any]:
    """Where a movement runs. Default: in the request's session, committing it, so pending
    changes there (a task row, a state transition) land atomically with the movement.
    own=True: a short Core transaction on its own pooled connection; cheaper, used by the
    chat hot path, which has nothing else to commit."""
    if own:
        with db.engine.begin() as conn:
            yield conn
        return
    session = db.session
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    session.commit()


# Statements built once (constructing SQL expressions costs more than running them here).
_TAKE_IF_COVERED = (
    update(_wallets)
    .where(_wallets.c.account_id == bindparam("account"),
           _wallets.c.balance >= bindparam("amount", type_=Credits()))
    .values(balance=_wallets.c.balance - bindparam("amount", type_=Credits()))
)
_ADD = (
    update(_wallets)
    .where(_wallets.c.account_id == bindparam("account"))
    .values(balance=_wallets.c.balance + bindparam("amount", type_=Credits()))
)
_RECORD = insert(_ledger)


def grant(account_id: str, amount: Decimal, *, reason: str | None = None,
          ref: str | None = None) -> None:
    amount = quantize(check_range(amount))
    if amount <= 0:
        raise ValueError("grant amount must be positive")
    with _transaction(own=False) as tx:
        result = tx.execute(_ADD, {"account": account_id, "amount": amount})
        if result.rowcount != 1:
            raise LookupError(f"no wallet for account {account_id}")
        # Our row lock makes this read our own update; out of range rolls the grant back.
        check_range(tx.execute(select(_wallets.c.balance).where(
            _wallets.c.account_id == account_id)).scalar_one(), "the resulting balance")
        tx.execute(_RECORD, [_entry(account_id, "grant", amount, ref, reason)])


def reserve(account_id: str, amount: Decimal, ref: str, *, own: bool = False) -> Decimal:
    """Hold `amount` or raise InsufficientBalance. Returns the held amount."""
    amount = quantize(amount)
    with _transaction(own) as tx:
        result = tx.execute(_TAKE_IF_COVERED, {"account": account_id, "amount": amount})
        if result.rowcount != 1:
            raise InsufficientBalance(amount)
        tx.execute(_RECORD, [_entry(account_id, "reserve", -amount, ref, None)])
    return amount


def settle(account_id: str, reserved: Decimal, charge: Decimal, ref: str, *,
           own: bool = False) -> Decimal:
    """Capture `charge` (capped at the hold) and release the hold. Returns what was charged."""
    charge = min(quantize(charge), reserved)
    with _transaction(own) as tx:
        tx.execute(_ADD, {"account": account_id, "amount": reserved - charge})
        tx.execute(_RECORD, [_entry(account_id, "release", reserved, ref, None),
                             _entry(account_id, "capture", -charge, ref, None)])
    return charge


def refund(account_id: str, amount: Decimal, ref: str, reason: str | None = None, *,
           own: bool = False) -> None:
    """Give a whole hold back (failed or canceled work)."""
    with _transaction(own) as tx:
        tx.execute(_ADD, {"account": account_id, "amount": amount})
        tx.execute(_RECORD, [_entry(account_id, "refund", amount, ref, reason)])


def balance(account_id: str) -> Decimal | None:
    return db.session.execute(
        select(_wallets.c.balance).where(_wallets.c.account_id == account_id)
    ).scalar_one_or_none()


def recent_entries(account_id: str, limit: int = 20) -> list[LedgerEntry]:
    return list(
        db.session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.account_id == account_id)
            .order_by(LedgerEntry.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class Audit:
    account_id: str
    balance: Decimal
    ledger_sum: Decimal

    @property
    def ok(self) -> bool:
        return self.balance == self.ledger_sum


def audit(account_id: str) -> Audit:
    """Prove balance == sum(ledger) for one account."""
    # SUM keeps the Credits type, so the result is converted like the column itself.
    total = db.session.execute(
        select(func.sum(_ledger.c.amount)).where(_ledger.c.account_id == account_id)
    ).scalar_one()
    return Audit(account_id, balance(account_id) or ZERO, total or ZERO)


def audit_all() -> list[Audit]:
    ids = db.session.scalars(select(_wallets.c.account_id)).all()
    return [audit(account_id) for account_id in ids]
