"""Group commit (beatra.groupcommit): concurrent hot-path movements on SQLite share one
transaction, and each caller still sees exactly what a transaction of its own would give it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from beatra import groupcommit
from beatra.accounts import service
from beatra.billing import wallet
from beatra.extensions import db
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="group commit is SQLite's (Postgres: one "
                                "transaction per movement)")

ROOT = Path(__file__).resolve().parents[2]


class Killed(BaseException):
    """What gevent raises in a greenlet that is killed."""


@pytest.fixture
def batched(app: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """install(*sizes, interrupt=False): the app's group commit, whose leaders wait until the
    next of `sizes` movements are queued (so they form one batch; no wait once the sizes are
    used up); with `interrupt` the first leader is killed there."""
    with app.app_context():
        engine = db.engine

    def install(*sizes: int, interrupt: bool = False) -> groupcommit.GroupCommit:
        expected = list(sizes)
        killed: list[bool] = []

        def pause() -> None:
            n = expected.pop(0) if expected else 0
            while group.waiting < n:
                threading.Event().wait(0.002)
            if interrupt and not killed:
                killed.append(True)
                raise Killed

        group = groupcommit.GroupCommit(engine, pause=pause)
        monkeypatch.setitem(groupcommit._groups, engine, group)
        return group

    yield install


def _in_threads(app: Any, calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread (inside an app context); its result or exception."""
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        with app.app_context():
            try:
                results[i] = calls[i]()
            except BaseException as exc:  # handed to the test
                results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads), "a caller never got its answer"
    return results


def _account(app: Any, credits: str) -> tuple[str, str]:
    with app.app_context():
        account = service.create_account("g", Decimal(credits))
        key, _ = service.create_key(account.id)
        return account.id, key.id


def _reserve(account_id: str, key_id: str, amount: str) -> Callable[[], Any]:
    return lambda: wallet.reserve(
        account_id, Decimal(amount), kind="chat", own=True, lease_seconds=60,
        attribution=wallet.Attribution(key_id, "req", "chat.completions", "m"))


def _ledger_kinds(app: Any, account_id: str) -> list[str]:
    with app.app_context():
        return sorted(e.kind for e in wallet.recent_entries(account_id, 100))


def test_concurrent_movements_share_one_commit(app, batched, ledger_ok):
    account_id, key_id = _account(app, "10")
    group = batched(6, 6)
    holds = _in_threads(app, [_reserve(account_id, key_id, "1")] * 6)
    assert all(isinstance(h, wallet.HeldCredits) for h in holds), holds
    assert len({h.id for h in holds}) == 6
    assert (group.commits, group.movements) == (1, 6)
    settled = _in_threads(app, [lambda h=h: wallet.settle(h, Decimal("0.25"), own=True)
                                for h in holds])
    assert settled == [Decimal("0.25")] * 6
    assert (group.commits, group.movements) == (2, 12)
    with app.app_context():
        assert wallet.balance(account_id) == Decimal("8.5")


def test_a_refused_movement_rolls_back_alone(app, batched, ledger_ok):
    account_id, key_id = _account(app, "1")
    group = batched(3)
    results = _in_threads(app, [_reserve(account_id, key_id, "0.4")] * 3)
    refused = [r for r in results if isinstance(r, wallet.InsufficientBalance)]
    holds = [r for r in results if isinstance(r, wallet.HeldCredits)]
    assert len(refused) == 1 and len(holds) == 2
    assert (group.commits, group.movements) == (1, 2)
    with app.app_context():
        assert wallet.balance(account_id) == Decimal("0.2")
        for hold in holds:
            wallet.refund(hold, own=True)
    assert _ledger_kinds(app, account_id) == ["grant", "refund", "refund", "reserve", "reserve"]


def _breaks_at_commit(tx: Any) -> None:
    """Passes its statements but makes COMMIT fail (a deferred foreign key to nothing)."""
    tx.control("PRAGMA defer_foreign_keys=ON")
    tx.execute(text("INSERT INTO ledger_entries (account_id, kind, amount, created_at) "
                    "VALUES ('acct_none', 'grant', 1, '2026-01-01')"), {})


def _rolls_everything_back(tx: Any) -> None:
    """What SQLite does on an I/O error or a full disk: the whole transaction is gone."""
    tx.control("ROLLBACK")
    raise OSError("disk I/O error")


@pytest.mark.parametrize("breaker", [_breaks_at_commit, _rolls_everything_back])
def test_a_broken_batch_fails_every_movement_and_commits_none(app, batched, breaker):
    account_id, key_id = _account(app, "10")
    group = batched(4)
    with app.app_context():
        engine = db.engine
    results = _in_threads(app, [_reserve(account_id, key_id, "1")] * 3
                          + [lambda: groupcommit.run_movement(engine, breaker)])
    assert all(isinstance(r, DBAPIError | OSError) for r in results), results
    assert sum(isinstance(r, DBAPIError) for r in results) >= 3  # the reserves: a DB error
    assert group.commits == 0
    with app.app_context():
        assert wallet.balance(account_id) == Decimal("10")
        assert wallet.open_holds(account_id) == []
    assert _ledger_kinds(app, account_id) == ["grant"]
    # and the next movement works
    hold = _in_threads(app, [_reserve(account_id, key_id, "1")])[0]
    assert isinstance(hold, wallet.HeldCredits)
    with app.app_context():
        wallet.refund(hold, own=True)


def test_a_leader_killed_before_its_batch_passes_the_lead_on(app, batched, ledger_ok):
    account_id, key_id = _account(app, "10")
    group = batched(4, 3, interrupt=True)
    results = _in_threads(app, [_reserve(account_id, key_id, "1")] * 4)
    assert sum(isinstance(r, Killed) for r in results) == 1
    holds = [r for r in results if isinstance(r, wallet.HeldCredits)]
    assert len(holds) == 3 and group.movements == 3
    with app.app_context():
        assert wallet.balance(account_id) == Decimal("7")
        for hold in holds:
            wallet.refund(hold, own=True)


def test_under_gevent_concurrent_requests_batch_their_movements(tmp_path):
    """The default pause (one turn of gevent's loop) is what makes batches in a gunicorn
    worker: 40 greenlets reserving at once need far fewer than 40 commits."""
    script = textwrap.dedent(f"""
        from gevent import monkey; monkey.patch_all()
        import gevent
        from decimal import Decimal
        from beatra import create_app, groupcommit
        from beatra.accounts import service
        from beatra.billing import wallet
        from beatra.extensions import db
        app = create_app({{"database_url": "sqlite:///{tmp_path}/g.db",
                          "catalog_path": "{ROOT}/tests/catalogs/test.yaml"}})
        with app.app_context():
            db.create_all()
            account_id = service.create_account("g", Decimal(100)).id
        def reserve():
            with app.app_context():
                return wallet.reserve(account_id, Decimal(1), kind="chat", own=True)
        holds = [g.get() for g in [gevent.spawn(reserve) for _ in range(40)]]
        with app.app_context():
            group = groupcommit._groups[db.engine]
            assert wallet.audit(account_id).ok and wallet.balance(account_id) == 60
        print(len({{h.id for h in holds}}), group.movements, group.commits)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    distinct, movements, commits = map(int, done.stdout.split())
    assert (distinct, movements) == (40, 40)
    assert commits <= 10, f"{commits} commits for 40 concurrent movements"
