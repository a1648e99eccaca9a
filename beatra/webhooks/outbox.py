"""The delivery row's state machine, every step a conditional UPDATE (like beatra.tasks.states).

    (task ends) ──record──▶ pending ──attempt fails──▶ retrying ──…──▶ failed
                               └──────────┴──2xx──▶ delivered        (410: failed, endpoint off)

`record` runs inside the transaction that ends the task (the caller commits), so a task can
never finish without its callback being scheduled. `claim` fences one attempt at a time; a
worker that dies mid-attempt leaves a lease that expires, and the sweeper re-sends the message.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from beatra.extensions import db, rowcount, table_of
from beatra.timeutil import utcnow
from beatra.webhooks.models import LAST_ERROR_MAX, OPEN_DELIVERY, WebhookDelivery, WebhookEndpoint
from beatra.webhooks.signing import event_id

_d = table_of(WebhookDelivery)
_e = table_of(WebhookEndpoint)
# A delayed message may arrive a little before the stored time (clocks of two processes).
_EARLY_SLACK = timedelta(seconds=1)


def record(account_id: str, task_id: str, status: str) -> bool:
    """Schedule the callback for a task that is ending now, in the caller's transaction: one
    INSERT … SELECT that adds nothing when the account has no active endpoint."""
    now = utcnow()
    source = select(
        literal(task_id), _e.c.account_id, literal(event_id(task_id, status)), _e.c.url,
        literal("pending"), literal(0), literal(now), literal(now), literal(now), literal(now),
    ).where(_e.c.account_id == account_id, _e.c.status == "active")
    # RETURNING rather than rowcount: psycopg reports -1 for INSERT … SELECT.
    inserted = db.session.execute(insert(_d).from_select(
        ["task_id", "account_id", "event_id", "url", "status", "attempt_count",
         "next_attempt_at", "enqueued_at", "created_at", "updated_at"], source)
        .returning(_d.c.task_id)).first()
    return inserted is not None


def reset(account_id: str, task_id: str, status: str, url: str) -> None:
    """Redeliver: start the delivery over (a new attempt count; the same event id)."""
    now = utcnow()
    values = {"url": url, "status": "pending", "attempt_count": 0, "next_attempt_at": now,
              "enqueued_at": now, "claim_token": None, "lease_until": None,
              "delivered_at": None, "last_status_code": None, "last_error": None,
              "updated_at": now, "event_id": event_id(task_id, status)}
    result = db.session.execute(update(_d).where(_d.c.task_id == task_id).values(**values))
    if rowcount(result) == 0:
        try:
            db.session.execute(insert(_d).values(task_id=task_id, account_id=account_id,
                                                 created_at=now, **values))
        except IntegrityError:  # a concurrent redeliver inserted it first: reset that one
            db.session.rollback()
            db.session.execute(update(_d).where(_d.c.task_id == task_id).values(**values))
    db.session.commit()


@dataclass(frozen=True)
class Attempt:
    task_id: str
    account_id: str
    event_id: str
    token: str
    attempt_count: int  # attempts made before this one


def _claimable(now: datetime) -> ColumnElement[bool]:
    return and_(_d.c.status.in_(OPEN_DELIVERY), _d.c.next_attempt_at <= now + _EARLY_SLACK,
                or_(_d.c.claim_token.is_(None), _d.c.lease_until < now))


def claim(task_id: str, *, lease_seconds: float) -> Attempt | None:
    """Own the next attempt; None when it is not due, final, or another worker is on it."""
    now = utcnow()
    token = secrets.token_hex(16)
    result = db.session.execute(
        update(_d).where(_d.c.task_id == task_id, _claimable(now))
        .values(claim_token=token, lease_until=now + timedelta(seconds=lease_seconds)))
    db.session.commit()
    if rowcount(result) != 1:
        return None
    row = db.session.execute(
        select(_d.c.account_id, _d.c.event_id, _d.c.attempt_count, _d.c.claim_token)
        .where(_d.c.task_id == task_id)).one()
    db.session.commit()
    if row.claim_token != token:
        return None
    return Attempt(task_id, row.account_id, row.event_id, token, row.attempt_count)


def _owned(attempt: Attempt) -> ColumnElement[bool]:
    return and_(_d.c.task_id == attempt.task_id, _d.c.claim_token == attempt.token)


def finish(attempt: Attempt, *, url: str | None, status: str, status_code: int | None,
           error: str | None, next_attempt_at: datetime | None, counted: bool = True) -> bool:
    """Record an attempt's outcome (status: delivered | retrying | failed)."""
    now = utcnow()
    values = {
        "status": status, "attempt_count": attempt.attempt_count + (1 if counted else 0),
        "last_status_code": status_code,
        "last_error": error[:LAST_ERROR_MAX] if error else None,
        "next_attempt_at": next_attempt_at, "claim_token": None, "lease_until": None,
        "updated_at": now,
    }
    if url is not None:
        values["url"] = url
    if status == "delivered":
        values["delivered_at"] = now
    if next_attempt_at is not None:
        values["enqueued_at"] = now
    result = db.session.execute(update(_d).where(_owned(attempt)).values(**values))
    db.session.commit()
    return rowcount(result) == 1


# --- the sweeper's side ---------------------------------------------------------------------


def overdue(*, grace_seconds: float, limit: int = 500) -> list[str]:
    """Open deliveries whose attempt is overdue by `grace_seconds` and nobody holds: their
    message was lost (a restart of the embedded runner, a flushed Redis, a killed worker)."""
    now = utcnow()
    ids = list(db.session.scalars(
        select(_d.c.task_id).where(_claimable(now), _stale(now, grace_seconds))
        .order_by(_d.c.next_attempt_at).limit(limit)))
    db.session.commit()
    return ids


def _stale(now: datetime, grace_seconds: float) -> ColumnElement[bool]:
    cutoff = now - timedelta(seconds=grace_seconds)
    return and_(_d.c.next_attempt_at < cutoff,
                or_(_d.c.enqueued_at.is_(None), _d.c.enqueued_at < cutoff))


def mark_requeued(task_id: str, *, grace_seconds: float) -> bool:
    """Only the sweeper that wins this stamp sends the message (one per period)."""
    now = utcnow()
    result = db.session.execute(
        update(_d).where(_d.c.task_id == task_id, _claimable(now), _stale(now, grace_seconds))
        .values(enqueued_at=now))
    db.session.commit()
    return rowcount(result) == 1


def callbacks_for(task_ids: list[str]) -> dict[str, dict[str, object]]:
    """The contract's TaskCallback for each task that has a delivery."""
    from beatra.timeutil import isoformat

    if not task_ids:
        return {}
    rows = db.session.execute(
        select(_d.c.task_id, _d.c.url, _d.c.status, _d.c.attempt_count, _d.c.delivered_at,
               _d.c.last_error).where(_d.c.task_id.in_(task_ids)))
    return {r.task_id: {"url": r.url or "", "status": r.status,
                        "attempt_count": r.attempt_count,
                        "delivered_at": isoformat(r.delivered_at), "last_error": r.last_error}
            for r in rows}
