"""Wallet movements: each one conditional SQL plus ledger rows, in one short transaction.

reserve:  balance -= R  only if balance >= R; a hold row opens  (ledger: reserve -R)
settle:   the hold closes (once); balance += R - C, C capped at R (ledger: release +R, capture -C)
refund:   the hold closes (once); balance += R                   (ledger: refund +R)
grant:    balance += A                                            (ledger: grant +A)

A hold attributed to an API key also moves that key's counters in the same transaction:
reserve:  key.held += R  only if key.spent + key.held + R <= key.credit_limit (or no limit)
settle:   key.held -= R, key.spent += C;   refund: key.held -= R
so a key's captured plus held credits never exceed its limit, however many calls race.

No read-modify-write in Python: concurrent reserves can never overdraw, and the conditional
UPDATE that closes a hold (`settled_at IS NULL`) makes a hold settle exactly once even when a
late request and the sweeper race for it. Locks are always taken wallet row first, key row
second, so two movements never wait on each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import bindparam, column, func, insert, select, table, update

from beatra import fastsql
from beatra.accounts.models import ApiKey
from beatra.billing.models import Hold, LedgerEntry, Wallet
from beatra.billing.money import ZERO, Credits, check_range, quantize
from beatra.errors import ApiError
from beatra.extensions import db, rowcount, table_of
from beatra.groupcommit import run_movement
from beatra.ids import new_id
from beatra.timeutil import utcnow

_wallets = table_of(Wallet)
_ledger = table_of(LedgerEntry)
_holds = table_of(Hold)
_keys = table_of(ApiKey)

ACCOUNT_BALANCE = "account_balance"
KEY_CREDIT_LIMIT = "key_credit_limit"


class InsufficientBalance(ApiError):
    """402; `details.limit_source` says which limit refused: the account's balance or the
    API key's credit limit."""

    def __init__(self, needed: Decimal, limit_source: str = ACCOUNT_BALANCE) -> None:
        message = ("This API key's credit limit is too low for this request."
                   if limit_source == KEY_CREDIT_LIMIT
                   else "Account balance is too low for this request.")
        super().__init__(
            402,
            "insufficient_balance",
            message,
            details={"required_credits": format(needed, "f"), "limit_source": limit_source},
        )
        self.limit_source = limit_source


@dataclass(frozen=True)
class Attribution:
    """Who and what a movement is for, recorded on the hold and on every ledger row."""

    key_id: str | None = None
    request_id: str | None = None
    capability: str | None = None
    model: str | None = None


NOBODY = Attribution()


@dataclass(frozen=True)
class HeldCredits:
    """An open hold as its owner sees it."""

    id: str
    account_id: str
    amount: Decimal
    ref: str
    attribution: Attribution = NOBODY


def _entry(hold: HeldCredits | None, account_id: str, kind: str, amount: Decimal,
           ref: str | None, reason: str | None, *, attribution: Attribution = NOBODY,
           tokens: tuple[int | None, int | None] = (None, None)) -> dict[str, Any]:
    who = hold.attribution if hold is not None else attribution
    return {
        "account_id": account_id, "kind": kind, "amount": amount, "ref": ref,
        "reason": reason, "created_at": utcnow(),
        "hold_id": hold.id if hold is not None else None,
        "key_id": who.key_id, "request_id": who.request_id, "capability": who.capability,
        "model": who.model, "input_tokens": tokens[0], "output_tokens": tokens[1],
    }


def create_wallet(account_id: str) -> None:
    db.session.execute(insert(_wallets).values(account_id=account_id, balance=ZERO))


class _SessionMovement:
    """A movement inside the request's session (see `_apply`)."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def execute(self, statement: Any, params: Any) -> int:
        return rowcount(self.session.execute(statement, params))

    def first(self, statement: Any, params: Any) -> Any:
        return self.session.execute(statement, params).first()


_Movement = _SessionMovement | fastsql.RawTransaction
T = TypeVar("T")


def _apply(movement: Callable[[_Movement], T], own: bool) -> T:
    """Run a movement (a function of the statements' executor) and commit it. Default: in the
    request's session, so pending changes there (a task row, a state transition) land
    atomically with it. own=True: prebuilt statements on a pooled DB-API connection
    (beatra.fastsql), committed with concurrent ones on SQLite (beatra.groupcommit); for the
    chat hot path and the sweeper, which have nothing else to commit."""
    if own:
        return run_movement(db.engine, movement)
    session = db.session
    try:
        result = movement(_SessionMovement(session))
    except BaseException:
        session.rollback()
        raise
    session.commit()
    return result


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
_OPEN_HOLD = insert(_holds)
_CLOSE_HOLD = (
    update(_holds)
    .where(_holds.c.id == bindparam("hold"), _holds.c.settled_at.is_(None))
    .values(settled_at=bindparam("now"), accrued=bindparam("charge", type_=Credits()))
)
_KEY_HOLD_IF_WITHIN_LIMIT = (
    update(_keys)
    .where(_keys.c.id == bindparam("key"),
           _keys.c.credit_limit.is_(None)
           | (_keys.c.spent + _keys.c.held + bindparam("amount", type_=Credits())
              <= _keys.c.credit_limit))
    .values(held=_keys.c.held + bindparam("amount", type_=Credits()))
)
_KEY_SETTLE = (
    update(_keys)
    .where(_keys.c.id == bindparam("key"))
    .values(held=_keys.c.held - bindparam("amount", type_=Credits()),
            spent=_keys.c.spent + bindparam("charge", type_=Credits()))
)
_KEY_EXISTS = select(_keys.c.id).where(_keys.c.id == bindparam("key"))
_BALANCE = select(_wallets.c.balance).where(_wallets.c.account_id == bindparam("account"))


def grant(account_id: str, amount: Decimal, *, reason: str | None = None,
          ref: str | None = None) -> None:
    amount = quantize(check_range(amount))
    if amount <= 0:
        raise ValueError("grant amount must be positive")

    def movement(tx: _Movement) -> None:
        if tx.execute(_ADD, {"account": account_id, "amount": amount}) != 1:
            raise LookupError(f"no wallet for account {account_id}")
        # Our row lock makes this read our own update; out of range rolls the grant back.
        row = tx.first(_BALANCE, {"account": account_id})
        assert row is not None  # the UPDATE above found the wallet
        check_range(row[0], "the resulting balance")
        tx.execute(_RECORD, [_entry(None, account_id, "grant", amount, ref, reason)])

    _apply(movement, own=False)


def reserve(account_id: str, amount: Decimal, ref: str | None = None, *, kind: str = "task",
            attribution: Attribution = NOBODY, lease_seconds: float | None = None,
            own: bool = False) -> HeldCredits:
    """Hold `amount` or raise InsufficientBalance. `ref` names what the hold is for (a task id;
    default: the hold's own id). With `lease_seconds` the hold expires unless renewed
    (beatra.billing.holds), so the sweeper can settle it if its owner dies."""
    amount = quantize(amount)
    hold_id = new_id("hold")
    hold = HeldCredits(hold_id, account_id, amount, ref or hold_id, attribution)
    now = utcnow()

    def movement(tx: _Movement) -> HeldCredits:
        if tx.execute(_TAKE_IF_COVERED, {"account": account_id, "amount": amount}) != 1:
            raise InsufficientBalance(amount)
        if attribution.key_id is not None:
            held = tx.execute(_KEY_HOLD_IF_WITHIN_LIMIT,
                              {"key": attribution.key_id, "amount": amount})
            if held != 1:  # raising rolls the wallet's UPDATE back too
                if tx.first(_KEY_EXISTS, {"key": attribution.key_id}) is None:
                    raise LookupError(f"no API key {attribution.key_id}")
                raise InsufficientBalance(amount, KEY_CREDIT_LIMIT)
        tx.execute(_OPEN_HOLD, {
            "id": hold_id, "account_id": account_id, "kind": kind, "amount": amount,
            "ref": hold.ref, "request_id": attribution.request_id, "key_id": attribution.key_id,
            "capability": attribution.capability, "model": attribution.model, "accrued": ZERO,
            "lease_until": now + timedelta(seconds=lease_seconds) if lease_seconds else None,
            "created_at": now, "settled_at": None})
        tx.execute(_RECORD, _entry(hold, account_id, "reserve", -amount, hold.ref, None))
        return hold

    return _apply(movement, own)


def settle(hold: HeldCredits, charge: Decimal, *, reason: str | None = None,
           tokens: tuple[int | None, int | None] = (None, None),
           own: bool = False) -> Decimal | None:
    """Capture `charge` (capped at the hold) and release the rest. Returns what was charged,
    or None when the hold was already settled (by the sweeper or an earlier call): then
    nothing moves (pending session changes are still committed unless own=True)."""
    charge = min(quantize(charge), hold.amount)

    def movement(tx: _Movement) -> Decimal | None:
        if tx.execute(_CLOSE_HOLD, {"hold": hold.id, "now": utcnow(), "charge": charge}) != 1:
            return None
        tx.execute(_ADD, {"account": hold.account_id, "amount": hold.amount - charge})
        _settle_key(tx, hold, charge)
        tx.execute(_RECORD, [
            _entry(hold, hold.account_id, "release", hold.amount, hold.ref, reason),
            _entry(hold, hold.account_id, "capture", -charge, hold.ref, reason, tokens=tokens),
        ])
        return charge

    return _apply(movement, own)


def refund(hold: HeldCredits, reason: str | None = None, *, own: bool = False) -> bool:
    """Give a whole hold back (failed or canceled work). False when it was already settled."""

    def movement(tx: _Movement) -> bool:
        if tx.execute(_CLOSE_HOLD, {"hold": hold.id, "now": utcnow(), "charge": ZERO}) != 1:
            return False
        tx.execute(_ADD, {"account": hold.account_id, "amount": hold.amount})
        _settle_key(tx, hold, ZERO)
        tx.execute(_RECORD, _entry(hold, hold.account_id, "refund", hold.amount, hold.ref,
                                   reason))
        return True

    return _apply(movement, own)


def _settle_key(tx: _Movement, hold: HeldCredits, charge: Decimal) -> None:
    """The key's side of closing a hold: its held part leaves, the captured part is spent."""
    if hold.attribution.key_id is not None:
        tx.execute(_KEY_SETTLE, {"key": hold.attribution.key_id, "amount": hold.amount,
                                 "charge": charge})


def _hold_from_row(row: Any) -> HeldCredits:
    return HeldCredits(row.id, row.account_id, row.amount, row.ref, Attribution(
        row.key_id, row.request_id, row.capability, row.model))


def open_hold_for(account_id: str, ref: str) -> HeldCredits | None:
    """The open hold of a task (ref = task id), if any (a zero-price task holds nothing)."""
    row = db.session.execute(
        select(_holds).where(_holds.c.account_id == account_id, _holds.c.ref == ref,
                             _holds.c.settled_at.is_(None))
    ).first()
    return _hold_from_row(row) if row is not None else None


def open_holds(account_id: str | None = None) -> list[Hold]:
    query = select(Hold).where(Hold.settled_at.is_(None)).order_by(Hold.created_at, Hold.id)
    if account_id is not None:
        query = query.where(Hold.account_id == account_id)
    return list(db.session.scalars(query))


def expired_holds(now: datetime, limit: int = 500) -> list[tuple[HeldCredits, Decimal]]:
    """(hold, recorded accrual) of open holds whose lease ran out: their owner is gone (see
    beatra.billing.holds)."""
    rows = db.session.execute(
        select(_holds).where(_holds.c.settled_at.is_(None), _holds.c.lease_until < now)
        .order_by(_holds.c.lease_until).limit(limit)
    ).all()
    db.session.rollback()  # end the read transaction; each settlement has its own
    return [(_hold_from_row(row), row.accrued) for row in rows]


def ended_task_holds() -> list[tuple[str, str]]:
    """(hold id, task id) of open task holds whose task is terminal: never right."""
    tasks = table("tasks", column("id"), column("status"))
    rows = db.session.execute(
        select(_holds.c.id, _holds.c.ref).join(tasks, tasks.c.id == _holds.c.ref)
        .where(_holds.c.settled_at.is_(None), _holds.c.kind == "task",
               tasks.c.status.in_(("succeeded", "failed", "canceled")))
    ).all()
    return [(row.id, row.ref) for row in rows]


_RENEW = (
    update(_holds)
    .where(_holds.c.id == bindparam("hold"), _holds.c.settled_at.is_(None))
    .values(lease_until=bindparam("until"), accrued=bindparam("accrued", type_=Credits()))
)


def renew(leases: list[tuple[str, Decimal]], until: datetime) -> None:
    """Extend the leases of live holds and record what each has accrued so far."""
    if not leases:
        return
    with db.engine.begin() as conn:
        conn.execute(_RENEW, [{"hold": hold_id, "until": until, "accrued": quantize(accrued)}
                              for hold_id, accrued in leases])


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


@dataclass(frozen=True)
class KeyAudit:
    key_id: str
    spent: Decimal
    held: Decimal
    captured: Decimal  # what the ledger captured for the key
    holding: Decimal  # its open holds

    @property
    def ok(self) -> bool:
        return self.spent == self.captured and self.held == self.holding


def key_audits() -> list[KeyAudit]:
    """Prove every key's counters equal its ledger captures and open holds."""
    captured = {key_id: -total for key_id, total in db.session.execute(
        select(_ledger.c.key_id, func.sum(_ledger.c.amount))
        .where(_ledger.c.kind == "capture", _ledger.c.key_id.is_not(None))
        .group_by(_ledger.c.key_id))}
    holding: dict[str, Decimal] = dict(db.session.execute(
        select(_holds.c.key_id, func.sum(_holds.c.amount))
        .where(_holds.c.settled_at.is_(None), _holds.c.key_id.is_not(None))
        .group_by(_holds.c.key_id)).all())
    rows = db.session.execute(select(_keys.c.id, _keys.c.spent, _keys.c.held)).all()
    return [KeyAudit(row.id, row.spent, row.held, captured.get(row.id) or ZERO,
                     holding.get(row.id) or ZERO) for row in rows]
