"""Holds that outlive a request's happy path: leases, deferred settlements, the reaper.

A chat hold is reserved with a lease (`BEATRA_HOLD_REAP_SECONDS`). While its request lives, the
process's LeaseKeeper renews the lease in one batched UPDATE per interval and records what the
request has accrued so far (what it would be billed if it stopped now). If the process dies,
renewals stop and the sweeper (`reap_expired`, run by every task background loop) settles the
hold for its last recorded accrual and releases the rest. A stream of any length that is alive
keeps renewing, so it is never reaped.

The owner's final settlement goes through `LeaseKeeper.settle`: if the database is briefly
unreachable it retries with backoff, then hands the settlement to the keeper's loop, which
keeps trying; a hold settles once whoever wins (the UPDATE that closes it is conditional).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from flask import Flask
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from beatra import metrics
from beatra.billing import wallet
from beatra.billing.wallet import HeldCredits
from beatra.extensions import db
from beatra.timeutil import utcnow

log = logging.getLogger(__name__)

EXTENSION_KEY = "beatra.holds"
SETTLE_BACKOFF = (0.1, 0.3, 1.0, 2.0)  # seconds between in-request settlement attempts
_DB_DOWN = (DBAPIError, PoolTimeout)


@dataclass
class _Settlement:
    hold: HeldCredits
    charge: Decimal
    tokens: tuple[int | None, int | None]
    reason: str | None


class LeaseKeeper:
    """One per app and process: renews the leases of live holds, retries settlements."""

    def __init__(self, app: Flask, reap_seconds: float) -> None:
        self.app = app
        self.reap_seconds = reap_seconds
        self.interval = max(0.2, min(60.0, reap_seconds / 4))
        self._live: dict[str, tuple[HeldCredits, Callable[[], Decimal]]] = {}
        self._pending: dict[str, _Settlement] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        atexit.register(self.settle_all_at_exit)

    # ---- the owner's side ----------------------------------------------------------------

    def track(self, hold: HeldCredits, accrued: Callable[[], Decimal]) -> None:
        """Keep `hold` alive while its request lives; `accrued()` is what it has earned."""
        with self._lock:
            self._live[hold.id] = (hold, accrued)
            self._ensure_thread()

    def settle(self, hold: HeldCredits, charge: Decimal, *,
               tokens: tuple[int | None, int | None] = (None, None),
               reason: str | None = None) -> Decimal | None:
        """The owner's settlement: charged amount, or None if it was settled elsewhere (the
        reaper) or has been deferred to the keeper (database unreachable). Never raises for a
        database outage."""
        job = _Settlement(hold, charge, tokens, reason)
        try:
            for delay in (*SETTLE_BACKOFF, None):
                try:
                    return self._run(job)
                except _DB_DOWN as exc:
                    db.session.remove()
                    if delay is None:
                        log.error("could not settle a hold; the keeper will retry",
                                  extra={"fields": {"hold_id": hold.id, "error": str(exc)}})
                        with self._lock:
                            self._pending[hold.id] = job
                            self._ensure_thread()
                        return None
                    time.sleep(delay)
            return None  # unreachable: the loop returns on its last pass
        finally:
            with self._lock:
                self._live.pop(hold.id, None)

    def _run(self, job: _Settlement) -> Decimal | None:
        return wallet.settle(job.hold, job.charge, tokens=job.tokens, reason=job.reason,
                             own=True)

    # ---- the keeper's loop ---------------------------------------------------------------

    def _ensure_thread(self) -> None:  # with self._lock held
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="beatra-hold-leases",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._lock:
                if not self._live and not self._pending:
                    self._thread = None  # restarted by the next track()
                    return
                live = list(self._live.values())
                pending = list(self._pending.values())
            try:
                with self.app.app_context():
                    self.renew(live)
                    for job in pending:
                        self._run(job)
                        with self._lock:
                            self._pending.pop(job.hold.id, None)
            except _DB_DOWN as exc:
                log.warning("hold lease renewal failed; retrying",
                            extra={"fields": {"error": str(exc)}})
            except Exception:
                log.exception("hold lease loop error")  # the loop must outlive it

    def renew(self, live: list[tuple[HeldCredits, Callable[[], Decimal]]]) -> None:
        leases = [(hold.id, min(accrued(), hold.amount)) for hold, accrued in live]
        wallet.renew(leases, utcnow() + timedelta(seconds=self.reap_seconds))

    def settle_all_at_exit(self) -> None:
        """Process exit (a worker's graceful shutdown): settle what is still live for its
        accrual instead of leaving it to the reaper."""
        with self._lock:
            live = list(self._live.values())
            self._live.clear()
        if not live:
            return
        try:
            with self.app.app_context():
                for hold, accrued in live:
                    self._run(_Settlement(hold, min(accrued(), hold.amount), (None, None),
                                          "process exiting"))
        except Exception:
            log.exception("could not settle live holds at exit; the reaper will")


def keeper_for(app: Flask) -> LeaseKeeper:
    keeper = app.extensions.get(EXTENSION_KEY)
    if keeper is None:
        settings = app.extensions["beatra.settings"]
        keeper = app.extensions.setdefault(
            EXTENSION_KEY, LeaseKeeper(app, settings.hold_reap_seconds))
    return keeper


def reap_expired() -> list[str]:
    """Settle every open hold whose lease ran out (its owner is gone) for what its last renewal
    recorded; returns their ids. Safe to run in many processes at once."""
    reaped = []
    for hold, accrued in wallet.expired_holds(utcnow()):
        charged = wallet.settle(hold, accrued, own=True,
                                reason="hold lease expired: its request's process stopped")
        if charged is not None:
            metrics.record_charge(hold.attribution.capability or "unknown", charged)
            reaped.append(hold.id)
    if reaped:
        log.warning("reaped orphaned holds", extra={"fields": {"count": len(reaped),
                                                               "hold_ids": reaped[:20]}})
    return reaped


def stale_holds(grace_seconds: float) -> list[tuple[str, str]]:
    """(hold id, why) for open holds that outlived their owner: a lease expired more than
    `grace_seconds` ago (the reaper should have settled it), or a task hold whose task has
    ended. What `credits audit` reports."""
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    stale = [(h.id, "lease expired; the sweeper has not settled it")
             for h, _ in wallet.expired_holds(cutoff, limit=10_000)]
    stale += [(hold_id, f"its task {ref} has ended") for hold_id, ref in wallet.ended_task_holds()]
    return stale
