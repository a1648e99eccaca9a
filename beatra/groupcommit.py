"""Hot-path money movements: on SQLite, concurrent callers share one transaction and commit.

A movement is a function of a `fastsql.RawTransaction` (a reserve, a settle, a refund).
`run_movement` runs it and returns its result once it is committed, or raises what it raised.

Why: SQLite has one writer at a time, and its commit costs more than the statements it
commits (measured ~75 µs: every page the transaction dirtied is appended to the WAL; a reserve
or a settle dirties about a dozen, mostly index pages the next movement dirties again). So on
SQLite the first caller that finds nobody committing leads: it lets the other ready greenlets
run once (each queues its movement and waits), then runs every queued movement, each inside a
SAVEPOINT, and commits them in one transaction. The lead passes to the first movement queued
meanwhile, so nobody leads for long.

- A movement that raises (InsufficientBalance, a constraint) is rolled back to its savepoint
  alone; the others still commit.
- An error that leaves the transaction unusable, or a failed COMMIT, fails every movement of
  the batch: none of them happened, and each caller gets the error, as it would have from a
  transaction of its own.

What a caller sees is what it saw with a transaction per movement (nothing is acknowledged
before it is committed); only the number of commits changes. Postgres keeps one transaction per
movement: it has concurrent writers and groups WAL flushes itself, and a batch locking rows of
several accounts could deadlock with another process's batch.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, event

from beatra.cooperative import let_others_run
from beatra.fastsql import RawTransaction, connect, transaction, translated

T = TypeVar("T")
Movement = Callable[[RawTransaction], T]


def run_movement(engine: Engine, movement: Movement[T]) -> T:
    """Run `movement` in a committed transaction (shared with concurrent ones on SQLite)."""
    if engine.dialect.name == "sqlite":
        return _group_for(engine).run(movement)
    with transaction(engine) as tx:
        return movement(tx)


_groups: weakref.WeakKeyDictionary[Engine, GroupCommit] = weakref.WeakKeyDictionary()
_groups_lock = threading.Lock()


def _group_for(engine: Engine) -> GroupCommit:
    group = _groups.get(engine)
    if group is None:
        with _groups_lock:
            group = _groups.get(engine)
            if group is None:
                group = _groups[engine] = GroupCommit(engine)
                event.listen(engine, "engine_disposed", lambda _engine: group.close())
    return group


class _Job:
    __slots__ = ("done", "error", "leads", "movement", "result")

    def __init__(self, movement: Movement[Any]) -> None:
        self.movement = movement
        self.result: Any = None
        self.error: BaseException | None = None
        self.done: threading.Event | None = None  # followers wait on it
        self.leads = False

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommit:
    """The batching for one SQLite engine (see the module doc)."""

    def __init__(self, engine: Engine, pause: Callable[[], None] = let_others_run) -> None:
        self._engine = weakref.ref(engine)  # the registry above is keyed by it
        self._pause = pause  # how the leader lets other callers queue behind it
        self._dialect = engine.dialect
        # One connection for every batch: SQLite drops a connection's page cache whenever
        # another connection has written, so batches on pool connections in turn read their
        # pages afresh (measured: their statements cost twice as much).
        self._connection: Any = None
        self._close_after_batch = False
        self._lock = threading.Lock()
        self._queue: list[_Job] = []
        self._leading = False  # someone holds the lead (between taking it and passing it on)
        self.commits = 0  # batches committed (for tests and benchmarks)
        self.movements = 0  # movements in them

    def run(self, movement: Movement[T]) -> T:
        job = _Job(movement)
        with self._lock:
            self._queue.append(job)
            if self._leading:
                job.done = threading.Event()
            else:
                self._leading = job.leads = True
        if job.done is not None:
            job.done.wait()
            if not job.leads:  # done in a leader's batch
                return job.outcome()
        self._lead(job)
        return job.outcome()

    def _lead(self, job: _Job) -> None:
        batch: list[_Job] = []
        try:
            self._pause()  # ready callers queue their movements into this batch
            with self._lock:
                batch, self._queue = self._queue, []
            connection = self._connect()
        except BaseException as exc:
            if isinstance(exc, Exception) and batch:  # the pool could not connect: all fail
                for each in batch:
                    each.error = exc
                self._finish(job, batch)
                return
            # Interrupted (a killed greenlet) before any movement ran: the others keep
            # their place and the next one leads.
            with self._lock:
                self._queue = [j for j in (*batch, *self._queue) if j is not job]
                self._pass_lead()
            raise
        try:
            self._commit(connection, batch)
        finally:
            self._finish(job, batch)

    @property
    def waiting(self) -> int:
        """Movements queued and not yet taken into a batch."""
        with self._lock:
            return len(self._queue)

    def close(self) -> None:
        """Give the batches' connection back (the engine was disposed); the next batch takes a
        new one. While a batch runs, it is given back when the batch ends."""
        with self._lock:
            if self._leading:
                self._close_after_batch = True
                return
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _connect(self) -> Any:  # with the lead held
        if self._connection is None or not self._connection.is_valid:
            engine = self._engine()
            if engine is None:
                raise RuntimeError("the engine of this group commit is gone")
            self._connection = connect(engine)
        return self._connection

    def _finish(self, job: _Job, batch: list[_Job]) -> None:
        with self._lock:
            if self._close_after_batch and self._connection is not None:
                self._connection.close()
                self._connection, self._close_after_batch = None, False
            self._pass_lead()
        for each in batch:
            if each is not job and each.done is not None:
                each.done.set()

    def _pass_lead(self) -> None:  # with self._lock held
        if self._queue:
            successor = self._queue[0]
            successor.leads = True
            assert successor.done is not None  # queued while a leader held the lead
            successor.done.set()
        else:
            self._leading = False

    def _commit(self, connection: Any, batch: list[_Job]) -> None:
        dialect = self._dialect
        tx = RawTransaction(connection, dialect)
        try:
            if len(batch) == 1:  # alone: a plain transaction, as without batching
                only = batch[0]
                try:
                    only.result = only.movement(tx)
                except BaseException as exc:
                    only.error = exc
                    connection.rollback()
                    return
            else:
                tx.control("BEGIN IMMEDIATE")
                for each in batch:
                    self._run_in_savepoint(tx, each)
            connection.commit()
            self.commits += 1
            self.movements += sum(1 for each in batch if each.error is None)
        except dialect.loaded_dbapi.Error as exc:  # COMMIT, BEGIN or a savepoint failed
            error = translated(exc, "COMMIT", None, connection, None, dialect)
            self._fail_all(connection, batch, error)
        except _Unusable as unusable:
            error = translated(unusable.error, "ROLLBACK TO", None, connection, None, dialect)
            self._fail_all(connection, batch, error)

    def _run_in_savepoint(self, tx: RawTransaction, job: _Job) -> None:
        tx.control("SAVEPOINT movement")
        try:
            job.result = job.movement(tx)
        except BaseException as exc:
            job.error = exc
            try:
                tx.control("ROLLBACK TO movement")
            except tx.driver_error as rollback_failed:
                # SQLite rolled the whole transaction back (I/O error, full disk…).
                raise _Unusable(rollback_failed) from exc
        tx.control("RELEASE movement")

    def _fail_all(self, connection: Any, batch: list[_Job], error: BaseException) -> None:
        for each in batch:  # a movement's own exception (rolled back anyway) is kept
            if each.error is None:
                each.result, each.error = None, error
        if connection.is_valid:
            try:
                connection.rollback()
            except self._dialect.loaded_dbapi.Error:
                connection.invalidate()


class _Unusable(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
