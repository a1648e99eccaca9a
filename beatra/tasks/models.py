"""The task row: the source of truth for one asynchronous job.

A broker message carries only the id. Every change is a conditional UPDATE (beatra.tasks.states);
claim_token fences writes so a worker that lost its claim cannot touch the row again.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from beatra.billing.money import Credits
from beatra.extensions import Model
from beatra.timeutil import utcnow

STATUSES = ("queued", "running", "succeeded", "failed", "canceled")
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
ACTIVE = ("queued", "running")


class Task(Model):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_account_id_id", "account_id", "id"),
        # The sweeper's two scans: stale queued rows and running rows with an expired lease.
        Index("ix_tasks_status_enqueued_at", "status", "enqueued_at"),
        Index("ix_tasks_status_lease_until", "status", "lease_until"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # task_<ULID>: sorts by time
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    capability: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))  # as requested (may be "auto")
    resolved_model: Mapped[str] = mapped_column(String(128))  # chosen at submission
    status: Mapped[str] = mapped_column(String(16), default="queued")
    request_id: Mapped[str | None] = mapped_column(String(128), default=None)
    meta: Mapped[dict[str, str] | None] = mapped_column("metadata", JSON, default=None)
    input: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Private to the capability handler and the engine (price snapshot, upstream job ids, …).
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)

    reserved_credits: Mapped[Decimal] = mapped_column(Credits())
    charged_credits: Mapped[Decimal | None] = mapped_column(Credits(), default=None)
    refunded_credits: Mapped[Decimal | None] = mapped_column(Credits(), default=None)

    # Execution bookkeeping (never on the wire).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(32), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    wake_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                                 default=None)
    cancel_reason: Mapped[str | None] = mapped_column(String(512), default=None)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL
