"""Process helpers for end-to-end tests of asynchronous work (images, music, webhooks).

`TaskStack` is the chat tests' `Stack` (sandbox + gunicorn with the gevent worker + the CLI on
one temporary database) plus what tasks need: quick engine timings, Redis mode with separate
`dramatiq beatra.tasks.worker` processes, killing and restarting those (or gunicorn's workers
in embedded mode), direct checks through the in-process app (Stack.app), and polling.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Self, TypeVar

import pytest
import requests

from beatra.localprocs import child_pids as children
from tests.e2e.stack import Stack, running

T = TypeVar("T")

# Engine timings for tests: a dead worker's task is picked up within ~lease + sweep seconds.
FAST_TASKS = {
    "BEATRA_TASK_HEARTBEAT_SECONDS": "0.5",
    "BEATRA_TASK_LEASE_SECONDS": "3",
    "BEATRA_TASK_SWEEP_SECONDS": "1",
    "BEATRA_TASK_REQUEUE_SECONDS": "3",
}


# The task modules' `stack` fixture params: tasks in the web process, or (a `services` test)
# separate Dramatiq workers on Redis.
TASK_MODES = ["embedded", pytest.param("redis", marks=pytest.mark.services)]


def task_stack(request: Any, tmp_path_factory: Any, name: str,
               **options: Any) -> Iterator[TaskStack]:
    """A TaskStack (`running`) in the mode `request.param` names (one of TASK_MODES), in a
    fresh directory `name-mode`; `options` go to TaskStack (catalog, env, threads)."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return running(TaskStack(tmp_path_factory.mktemp(f"{name}-{request.param}"),
                             redis_url=redis_url, **options))


def wait_until(check: Callable[[], T | None], *, timeout: float = 30, interval: float = 0.1,
               what: str = "condition") -> T:
    """Poll `check` until it returns something truthy (another process's state has no event
    we could wait on). Raises with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class TaskStack(Stack):
    def __init__(self, workdir: Path, *, redis_url: str | None = None,
                 catalog: Path | None = None, env: Mapping[str, str] | None = None,
                 threads: int = 2) -> None:
        extra = {**FAST_TASKS, "BEATRA_TASK_THREADS": str(threads),
                 "BEATRA_NET_ALLOWLIST": "127.0.0.1", "BEATRA_SECRET_KEY": "e2e-signing-key"}
        if redis_url:
            extra["REDIS_URL"] = redis_url
        super().__init__(workdir, catalog, env={**extra, **(env or {})})
        self.redis_url = redis_url
        self.threads = threads

    @property
    def mode(self) -> str:
        return "redis" if self.redis_url else "embedded"

    # --- processes ---------------------------------------------------------------------

    def start(self, web_workers: int = 1) -> Self:
        """Stack.start, and in Redis mode the task workers."""
        super().start(web_workers)
        if self.redis_url:
            self.start_task_workers()
        return self

    def start_task_workers(self, processes: int = 1, name: str = "tasks") -> None:
        """`python -m beatra.tasks` (the Procfile's worker line: `dramatiq beatra.tasks.worker`
        with JSON logs), Redis mode only."""
        if not self.redis_url:
            raise RuntimeError("task workers are separate processes only with REDIS_URL")
        self._spawn(name, [sys.executable, "-m", "beatra.tasks",
                           "--processes", str(processes), "--threads", str(self.threads)])

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal a whole process group (a dramatiq master and its workers) and reap it."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def kill_task_runners(self) -> None:
        """kill -9 whatever runs tasks: the dramatiq processes (Redis mode; they are started
        again) or gunicorn's worker processes (embedded; the master forks new ones)."""
        if self.redis_url:
            self.kill("tasks")
            self.start_task_workers()
            return
        master = self.procs["gateway"].pid
        old = set(children(master))
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: set(children(master)) - old, what="gunicorn to fork a new worker")
        wait_until(lambda: self._healthy(), what="the new gunicorn worker")

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/v1/health", timeout=1).ok
        except requests.RequestException:
            return False

    def flush_redis(self) -> None:
        import redis

        from tests.e2e.conftest import flush_claimed

        assert self.redis_url
        flush_claimed(redis.Redis.from_url(self.redis_url))

    # --- the database, in this process (Stack.app) ---------------------------------------

    @contextmanager
    def db(self) -> Iterator[Any]:
        from beatra.extensions import db

        with self.app.app_context():
            yield db.session

    def new_account(self, credits: str = "100", name: str = "e2e") -> Account:
        from beatra.accounts import service

        with self.app.app_context():
            account = service.create_account(name, Decimal(credits))
            _, key = service.create_key(account.id)
            return Account(self, account.id, key)

    def ledger_for(self, ref: str) -> list[tuple[str, Decimal]]:
        from sqlalchemy import select

        from beatra.billing.models import LedgerEntry

        with self.db() as session:
            rows = session.scalars(select(LedgerEntry).where(LedgerEntry.ref == ref)
                                   .order_by(LedgerEntry.id))
            return [(e.kind, e.amount) for e in rows]

    def task_column(self, task_id: str, column: str) -> Any:
        from beatra.tasks.models import Task

        with self.db() as session:
            task = session.get(Task, task_id)
            return getattr(task, column)


class Account:
    """An API key on a TaskStack, with the calls the task tests make."""

    def __init__(self, stack: TaskStack, account_id: str, key: str) -> None:
        self.stack = stack
        self.account_id = account_id
        self.key = key
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def url(self, path: str) -> str:
        return f"{self.stack.url}{path}"

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.post(self.url(path), timeout=60, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.url(path), timeout=60, **kwargs)

    def submit(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.post(path, json=body)
        assert resp.status_code == 202, resp.text
        return resp.json()

    def task(self, task_id: str) -> dict[str, Any]:
        resp = self.get(f"/v1/tasks/{task_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def wait(self, task_id: str, *, timeout: float = 60,
             until: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """Poll until the task is terminal (or `until` holds)."""
        done = until or (lambda t: t["status"] in ("succeeded", "failed", "canceled"))

        def check() -> dict[str, Any] | None:
            task = self.task(task_id)
            return task if done(task) else None

        return wait_until(check, timeout=timeout, what=f"task {task_id}")

    def balance(self) -> Decimal:
        from beatra.billing import wallet

        with self.stack.app.app_context():
            value = wallet.balance(self.account_id)
            assert value is not None
            return value
