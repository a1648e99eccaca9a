"""Task state transitions: each one a conditional UPDATE, so duplicate messages, retries and the
sweeper are harmless.

    queued ──claim──▶ running ──succeed──▶ succeeded
      │                 ├──fail─────▶ failed
      │                 ├──cancel───▶ canceled          (the owner, at a checkpoint)
      │                 └──park─────▶ running, unowned  (a delayed check: "again in N s")
      └──cancel_now (API)─────────▶ canceled          (queued, parked, or owner presumed dead)

An owner is whoever holds `claim_token`; every write by an owner is conditional on it, so a
worker the sweeper gave up on can never change the row afterwards. Terminal rows never change.

Money moves exactly once: settle (success) and refund (failure, cancel) run in the same
transaction as the transition out of an active state, and only when that UPDATE hit the row.
The webhook callback's outbox row (beatra.webhooks.outbox) joins that transaction too, so a
finished task always has its callback scheduled. A transition that ends a task returns `Ended`;
the caller sends the callback's first attempt after the commit (TaskRuntime.announce).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from beatra import metrics
from beatra.billing import wallet
from beatra.billing.money import ZERO
from beatra.extensions import db, rowcount, table_of
from beatra.tasks.models import Task
from beatra.timeutil import utcnow
from beatra.webhooks import outbox

_t = table_of(Task)


class LostClaim(Exception):
    """This worker no longer owns the task (finished, canceled, or claimed by another)."""


class CancelRequested(Exception):
    """The caller asked to cancel; the owner stops at this checkpoint."""


@dataclass(frozen=True)
class Ended:
    """A transition ended the task; `callback_due`: a webhook delivery was recorded with it and
    its first attempt is the caller's to send."""

    task_id: str
    status: str
    callback_due: bool


@dataclass
class Claim:
    """What the owner of a running task knows about it."""

    task_id: str
    token: str
    account_id: str
    capability: str
    model: str  # the resolved model
    attempts: int
    input: dict[str, Any]
    state: dict[str, Any]
    reserved: Decimal
    warnings: list[dict[str, Any]] = field(default_factory=list)


def _owned(claim: Claim) -> ColumnElement[bool]:
    return and_(_t.c.id == claim.task_id, _t.c.claim_token == claim.token,
                _t.c.status == "running")


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        _t.c.status == "queued",
        and_(_t.c.status == "running",
             or_(_t.c.wake_at.is_not(None), _t.c.lease_until.is_(None), _t.c.lease_until < now)),
    )


def claim(task_id: str, *, lease_seconds: float) -> Claim | None:
    """Take ownership of a queued task, a parked one, or one whose owner stopped renewing its
    lease. None when the task is terminal or someone else owns it (the message is a duplicate)."""
    now = utcnow()
    token = secrets.token_hex(16)
    result = db.session.execute(
        update(_t)
        .where(_t.c.id == task_id, _claimable(now))
        .values(
            status="running",
            claim_token=token,
            lease_until=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
            wake_at=None,
            started_at=func.coalesce(_t.c.started_at, now),
            # A wake-up from a delayed check is the same attempt; anything else is a new start.
            attempts=_t.c.attempts + case((_t.c.wake_at.is_not(None), 0), else_=1),
        )
    )
    if rowcount(result) != 1:
        db.session.rollback()
        return None
    db.session.commit()
    row = db.session.execute(select(Task).where(Task.id == task_id)).scalar_one()
    db.session.commit()  # end the read transaction before any upstream I/O
    if row.claim_token != token:
        return None
    return Claim(
        task_id=row.id, token=token, account_id=row.account_id, capability=row.capability,
        model=row.resolved_model, attempts=row.attempts, input=dict(row.input),
        state=dict(row.state or {}), reserved=row.reserved_credits,
        warnings=list(row.warnings or []),
    )


def renew(tokens: list[str], *, lease_seconds: float) -> int:
    """Heartbeat: extend the leases of the given owned tasks. Returns how many still run."""
    if not tokens:
        return 0
    now = utcnow()
    result = db.session.execute(
        update(_t)
        .where(_t.c.claim_token.in_(tokens), _t.c.status == "running")
        .values(lease_until=now + timedelta(seconds=lease_seconds), heartbeat_at=now)
    )
    db.session.commit()
    return rowcount(result)


def _owner_write(claim: Claim, values: dict[str, Any]) -> None:
    result = db.session.execute(update(_t).where(_owned(claim)).values(**values))
    db.session.commit()
    if rowcount(result) != 1:
        raise LostClaim(claim.task_id)


def set_progress(claim: Claim, progress: dict[str, Any], *, lease_seconds: float) -> None:
    now = utcnow()
    _owner_write(claim, {"progress": progress, "heartbeat_at": now,
                         "lease_until": now + timedelta(seconds=lease_seconds)})


def save_state(claim: Claim, state: dict[str, Any]) -> None:
    _owner_write(claim, {"state": state})


def checkpoint(claim: Claim) -> None:
    """Raise LostClaim or CancelRequested when the owner must stop here."""
    row = db.session.execute(
        select(_t.c.status, _t.c.claim_token, _t.c.cancel_requested_at)
        .where(_t.c.id == claim.task_id)
    ).one()
    db.session.commit()
    if row.status != "running" or row.claim_token != claim.token:
        raise LostClaim(claim.task_id)
    if row.cancel_requested_at is not None:
        raise CancelRequested(claim.task_id)


def park(claim: Claim, seconds: float, *, lease_seconds: float,
         state: dict[str, Any] | None = None) -> None:
    """Give the task up until a delayed message wakes it; the sweeper re-enqueues it if that
    message is lost (lease expires `lease_seconds` after the wake time)."""
    now = utcnow()
    wake = now + timedelta(seconds=seconds)
    values: dict[str, Any] = {
        "claim_token": None, "wake_at": wake, "enqueued_at": now,
        "lease_until": wake + timedelta(seconds=lease_seconds), "warnings": claim.warnings,
    }
    if state is not None:
        values["state"] = state
    _owner_write(claim, values)


def release(claim: Claim) -> None:
    """Drop ownership after an unexpected error so a retry may claim the task at once."""
    db.session.rollback()
    db.session.execute(update(_t).where(_owned(claim))
                       .values(claim_token=None, lease_until=utcnow()))
    db.session.commit()


def succeed(claim: Claim, *, output: dict[str, Any], usage: dict[str, Any],
            charge: Decimal) -> Ended | None:
    """running → succeeded, capturing `charge` (at most the hold) and releasing the rest.
    None when the task was canceled meanwhile or the claim was lost."""
    now = utcnow()
    charge = min(charge, claim.reserved)
    result = db.session.execute(
        update(_t)
        .where(_owned(claim), _t.c.cancel_requested_at.is_(None))
        .values(status="succeeded", completed_at=now, output=output, usage=usage,
                warnings=claim.warnings, charged_credits=charge, refunded_credits=ZERO,
                claim_token=None, lease_until=None, wake_at=None,
                progress={"stage": "succeeded", "percent": 100, "message": None})
    )
    if rowcount(result) != 1:
        db.session.rollback()
        return None
    ended = _ended(claim.account_id, claim.task_id, "succeeded",
                   lambda: _settle_in_transaction(claim.account_id, claim.task_id, charge, usage))
    metrics.record_charge(claim.capability, charge)  # after the commit: counted once
    return ended


def _ended(account_id: str, task_id: str, status: str,
           commit_money: Callable[[], object]) -> Ended:
    """The UPDATE ending the task is pending in the session: add the callback's outbox row and
    let `commit_money` commit all of it with the wallet movement."""
    recorded = outbox.record(account_id, task_id, status)
    commit_money()
    return Ended(task_id, status, callback_due=recorded)


def _settle_in_transaction(account_id: str, task_id: str, charge: Decimal,
                           usage: dict[str, Any]) -> None:
    hold = wallet.open_hold_for(account_id, task_id)
    if hold is None:  # nothing was held (a free task): just commit the transition
        db.session.commit()
        return
    tokens = (_count(usage.get("input_tokens")), _count(usage.get("output_tokens")))
    wallet.settle(hold, charge, tokens=tokens)  # commits the transition with it


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _refund_in_transaction(account_id: str, task_id: str, amount: Decimal, reason: str) -> None:
    hold = wallet.open_hold_for(account_id, task_id) if amount > 0 else None
    if hold is not None and wallet.refund(hold, reason):  # commits the transition with it
        metrics.record_refund(hold.amount)
    db.session.commit()


def fail(claim: Claim, error: dict[str, Any]) -> Ended | None:
    """running → failed with a refund of the whole hold."""
    result = db.session.execute(
        update(_t)
        .where(_owned(claim))
        .values(status="failed", completed_at=utcnow(), error=error, warnings=claim.warnings,
                charged_credits=ZERO, refunded_credits=claim.reserved, claim_token=None,
                lease_until=None, wake_at=None,
                progress={"stage": "failed", "percent": None, "message": error["message"]})
    )
    if rowcount(result) != 1:
        db.session.rollback()
        return None
    return _ended(claim.account_id, claim.task_id, "failed", lambda: _refund_in_transaction(
        claim.account_id, claim.task_id, claim.reserved, "task failed"))


def _canceled_values(now: datetime, reserved: Any) -> dict[str, Any]:
    return {
        "status": "canceled", "completed_at": now,
        "cancel_requested_at": func.coalesce(_t.c.cancel_requested_at, now),
        "charged_credits": ZERO, "refunded_credits": reserved, "claim_token": None,
        "lease_until": None, "wake_at": None,
        "progress": {"stage": "canceled", "percent": None, "message": None},
    }


def cancel_owned(claim: Claim) -> Ended | None:
    """running → canceled by its owner at a checkpoint, with a refund."""
    now = utcnow()
    values = _canceled_values(now, claim.reserved)
    values["warnings"] = claim.warnings
    result = db.session.execute(update(_t).where(_owned(claim)).values(**values))
    if rowcount(result) != 1:
        db.session.rollback()
        return None
    return _ended(claim.account_id, claim.task_id, "canceled", lambda: _refund_in_transaction(
        claim.account_id, claim.task_id, claim.reserved, "task canceled"))


def cancel_now(account_id: str, task_id: str, reason: str | None) -> Ended | None:
    """Cancel at once when no live worker owns the task: queued, parked for a delayed check,
    or its owner stopped renewing the lease. Refunds in the same transaction."""
    now = utcnow()
    reserved = db.session.execute(
        select(_t.c.reserved_credits).where(_t.c.id == task_id, _t.c.account_id == account_id)
    ).scalar_one_or_none()
    if reserved is None:
        db.session.rollback()
        return None
    values = _canceled_values(now, _t.c.reserved_credits)
    values["cancel_reason"] = func.coalesce(_t.c.cancel_reason, reason)
    result = db.session.execute(
        update(_t)
        .where(_t.c.id == task_id, _t.c.account_id == account_id, _claimable(now))
        .values(**values)
    )
    if rowcount(result) != 1:
        db.session.rollback()
        return None
    return _ended(account_id, task_id, "canceled",
                  lambda: _refund_in_transaction(account_id, task_id, reserved, "task canceled"))


def request_cancel(account_id: str, task_id: str, reason: str | None) -> bool:
    """Ask the live owner of a running task to stop at its next checkpoint."""
    result = db.session.execute(
        update(_t)
        .where(_t.c.id == task_id, _t.c.account_id == account_id, _t.c.status == "running")
        .values(cancel_requested_at=func.coalesce(_t.c.cancel_requested_at, utcnow()),
                cancel_reason=func.coalesce(_t.c.cancel_reason, reason))
    )
    db.session.commit()
    return rowcount(result) == 1


# --- the sweeper's side ---------------------------------------------------------------------


def lost_candidates(*, requeue_seconds: float, lease_seconds: float,
                    limit: int = 500) -> list[str]:
    """Ids of tasks that look lost: queued and untouched for `requeue_seconds`, or running
    with an expired lease (a dead worker, or a parked task whose wake-up message vanished)."""
    now = utcnow()
    queued = select(_t.c.id).where(
        _t.c.status == "queued",
        or_(_t.c.enqueued_at.is_(None),
            _t.c.enqueued_at < now - timedelta(seconds=requeue_seconds)),
    ).order_by(_t.c.enqueued_at).limit(limit)
    running = select(_t.c.id).where(
        _t.c.status == "running", _t.c.lease_until < now,
        or_(_t.c.enqueued_at.is_(None),
            _t.c.enqueued_at < now - timedelta(seconds=lease_seconds)),
    ).order_by(_t.c.lease_until).limit(limit)
    ids = list(db.session.scalars(queued)) + list(db.session.scalars(running))
    db.session.commit()
    return ids


def mark_requeued(task_id: str, *, requeue_seconds: float, lease_seconds: float) -> bool:
    """Conditionally stamp enqueued_at; only the sweeper that wins this may enqueue the task,
    so concurrent sweepers (one per process) send one message per period, not one each."""
    now = utcnow()
    result = db.session.execute(
        update(_t)
        .where(
            _t.c.id == task_id,
            or_(
                and_(_t.c.status == "queued",
                     or_(_t.c.enqueued_at.is_(None),
                         _t.c.enqueued_at < now - timedelta(seconds=requeue_seconds))),
                and_(_t.c.status == "running", _t.c.lease_until < now,
                     or_(_t.c.enqueued_at.is_(None),
                         _t.c.enqueued_at < now - timedelta(seconds=lease_seconds))),
            ),
        )
        .values(enqueued_at=now)
    )
    db.session.commit()
    return rowcount(result) == 1
