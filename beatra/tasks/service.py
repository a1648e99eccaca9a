"""Tasks for the API: submit (reserve + queue), look up, list with a keyset cursor, cancel.

Every query is scoped to the caller's account: another account's task id answers exactly like
a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from beatra.billing import wallet
from beatra.errors import not_found
from beatra.extensions import db
from beatra.ids import new_id
from beatra.pagination import decode_cursor, encode_cursor
from beatra.request_id import current_request_id
from beatra.tasks import states
from beatra.tasks.models import Task
from beatra.tasks.pricing import PriceTable
from beatra.tasks.runtime import TaskRuntime
from beatra.timeutil import utcnow


def task_id_for(created_at: datetime) -> str:
    """`task_<ULID>` whose time part is `created_at`: id order is creation order, which the
    list's keyset cursor relies on."""
    return new_id("task", created_at)


def submit(
    *,
    account_id: str,
    key_id: str | None,
    capability: str,
    requested_model: str,
    resolved_model: str,
    task_input: dict[str, Any],
    hold: Decimal,
    prices: PriceTable,
    warnings: list[dict[str, Any]] | None = None,
    metadata: dict[str, str] | None = None,
    state: dict[str, Any] | None = None,
) -> Task:
    """Create a queued task holding `hold` credits; the caller sends its message
    (TaskRuntime.send_task) once this returns. `key_id` (the API key that asked; None without
    one) is recorded on the hold and its ledger rows.

    The row and the hold commit together; InsufficientBalance (402) leaves nothing behind. If
    the message is never sent the sweeper sends it later.
    """
    now = utcnow()
    task = Task(
        id=task_id_for(now), account_id=account_id, capability=capability,
        model=requested_model, resolved_model=resolved_model, status="queued",
        request_id=current_request_id() or None, meta=metadata, input=task_input,
        state={**(state or {}), "pricing": prices.to_state()},
        progress={"stage": "queued", "percent": 0, "message": None},
        warnings=list(warnings or []), reserved_credits=hold, attempts=0,
        created_at=now, enqueued_at=now,
    )
    # Kept apart: the commit expires the row, and reading task.id after it would reload the row,
    # which fails (PendingRollbackError, a 500) if the database went away meanwhile.
    task_id = task.id
    db.session.add(task)
    if hold > 0:
        wallet.reserve(account_id, hold, task_id, kind="task",  # commits the row with the hold
                       attribution=wallet.Attribution(key_id, task.request_id, capability,
                                                      resolved_model))
    else:
        db.session.commit()
    return task


def get_task(account_id: str, task_id: str) -> Task:
    if not isinstance(task_id, str) or len(task_id) > 40:
        raise not_found("No such task.")
    task = db.session.scalars(
        select(Task).where(Task.id == task_id, Task.account_id == account_id)
    ).first()
    if task is None:
        raise not_found("No such task.")
    return task


@dataclass(frozen=True)
class Page:
    tasks: list[Task]
    next_cursor: str | None
    has_more: bool


def list_tasks(
    account_id: str,
    *,
    statuses: list[str] | None = None,
    capabilities: list[str] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int = 20,
    cursor: str | None = None,
    order: str = "desc",
) -> Page:
    """Keyset pagination on the task id (a ULID: creation order). New tasks never shift the
    pages after a cursor: in `desc` they sort before it, in `asc` they come on later pages."""
    query = select(Task).where(Task.account_id == account_id)
    if statuses:
        query = query.where(Task.status.in_(statuses))
    if capabilities:
        query = query.where(Task.capability.in_(capabilities))
    if created_after is not None:
        query = query.where(Task.created_at > created_after)
    if created_before is not None:
        query = query.where(Task.created_at < created_before)
    if cursor:
        last_id = decode_cursor(cursor, order)
        query = query.where(Task.id < last_id if order == "desc" else Task.id > last_id)
    query = query.order_by(Task.id.desc() if order == "desc" else Task.id.asc()).limit(limit + 1)
    rows = list(db.session.scalars(query))
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(order, rows[-1].id) if has_more and rows else None
    return Page(rows, next_cursor, has_more)


def cancel(account_id: str, task_id: str, reason: str | None,
           runtime: TaskRuntime) -> tuple[Task, bool]:
    """(task, was_already_terminal). A task nobody is running (queued, parked, or whose
    worker died) is canceled and refunded at once; a running one is asked to stop at its next
    checkpoint."""
    task = get_task(account_id, task_id)
    if task.terminal:
        return task, True
    db.session.commit()  # end the read; the transitions below are conditional anyway
    ended = states.cancel_now(account_id, task_id, reason)
    if ended is None:
        states.request_cancel(account_id, task_id, reason)
    runtime.announce(ended)
    task = get_task(account_id, task_id)
    # It may have finished on its own between our read and our update: that is "terminal".
    return task, task.terminal and task.status != "canceled"
