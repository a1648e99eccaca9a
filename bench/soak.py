"""Soak: beatra run as an operator would, under mixed load and injected faults, then reconciled.

    make soak            (SOAK_MINUTES, default 10; SOAK_CONCURRENCY, default 12)

Starts on free loopback ports: a throwaway Postgres and Redis, the sandbox upstream, gunicorn
(2 gevent workers) and 2 Dramatiq processes (`python -m beatra.tasks`), a webhook receiver.
Mixed load: chat sync and streamed (some with sandbox fault directives), images, MiniMax and
Suno music, uploads, cancels. Faults, spread over the run: kill -9 of a Dramatiq worker (then
restarted), kill -9 of a gunicorn worker while a stream is in flight, Redis FLUSHALL, a
Postgres restart. Then it waits for the sweepers and reconciles tasks, ledger and webhooks.

Artifacts stay on the local file store (the S3 store has its own tests in tests/services).
Its last line is one JSON object; the exit status is non-zero unless tasks_stuck,
double_charged, unrefunded, open_holds, webhooks_missing and http_500 are all 0.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.procs import TaskStack, children, wait_until  # noqa: E402
from tests.services.throwaway import ThrowawayPostgres, ThrowawayRedis  # noqa: E402
from tests.unit.test_webhooks import Receiver  # noqa: E402

T2M = "/v1/music/text-to-music"
FAULT_GRACE_SECONDS = 10  # 5xx this long after a fault recovered still count as the fault's
TERMINAL = ("succeeded", "failed", "canceled")


class Load:
    """Random operations from many threads; every response is recorded with its time."""

    def __init__(self, stack: TaskStack, keys: list[str], png: bytes) -> None:
        self.stack = stack
        self.keys = keys
        self.png = png
        self.lock = threading.Lock()
        self.responses: list[tuple[float, int, str]] = []  # (time, status, op)
        self.codes: Counter[str] = Counter()  # "status code" of every non-2xx answer
        self.errors: list[tuple[float, str, str]] = []  # (time, op, exception)
        self.task_ids: set[str] = set()
        self.stop = threading.Event()

    def _record(self, op: str, status: int, resp: requests.Response | None = None) -> None:
        code = ""
        if resp is not None and status >= 400:
            try:
                code = resp.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "?"
        with self.lock:
            self.responses.append((time.monotonic(), status, op))
            if code:
                self.codes[f"{status} {op} {code}"] += 1

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {random.choice(self.keys)}"
        return session

    def _task(self, session: requests.Session, path: str, body: dict[str, Any]) -> str | None:
        resp = session.post(f"{self.stack.url}{path}", json=body, timeout=120)
        self._record(path, resp.status_code, resp)
        if resp.status_code == 202:
            task_id = resp.json()["task_id"]
            with self.lock:
                self.task_ids.add(task_id)
            return task_id
        return None

    def one(self) -> None:
        session = self._session()
        url = self.stack.url
        op = random.choices(
            ["chat", "stream", "image", "minimax", "suno", "upload", "cancel"],
            weights=[30, 25, 12, 8, 8, 10, 7])[0]
        # Mostly clean calls: deliberate upstream failures rarely enough that the circuit
        # breakers (fed by them) do not hold the model closed for the whole run.
        directive = random.choices(
            ["", "[sandbox:fail=503] ", "[sandbox:delay=0.5] ", "[sandbox:truncate] "],
            weights=[85, 3, 7, 5])[0]
        try:
            if op in ("chat", "stream"):
                stream = op == "stream"
                content = directive + ("[sandbox:chunks=6,chunk_delay=0.1] " if stream else "")
                resp = session.post(f"{url}/v1/chat/completions", timeout=120, stream=stream,
                                    json={"model": "gpt-4o-mini", "stream": stream,
                                          "messages": [{"role": "user", "content": content
                                                        + "hello"}]})
                if stream and resp.ok:
                    for _ in resp.iter_content(None):
                        pass
                # A deliberate upstream fault (fail=503, truncate) may answer 5xx by design.
                deliberate = "fail" in directive or "truncate" in directive
                self._record(op + ("-fault" if deliberate else ""), resp.status_code, resp)
            elif op == "image":
                self._task(session, "/v1/images/generations",
                           {"model": "gpt-image-2", "prompt": "soak tile",
                            "aspect_ratio": "1:1", "output_format": "jpeg"})
            elif op == "minimax":
                self._task(session, T2M, {"model": "minimax-music-2.6", "prompt": "calm piano"})
            elif op == "suno":
                self._task(session, T2M, {"model": "suno-5.5", "prompt": "[sandbox:suno_step=0.5]"
                                          " upbeat synth"})
            elif op == "upload":
                seed = random.randrange(50)  # some bytes repeat: de-duplication is exercised
                data = self.png + seed.to_bytes(1, "big")  # trailing bytes keep it a valid PNG
                resp = session.post(f"{url}/v1/uploads", timeout=120,
                                    files={"file": ("s.png", data, "image/png")})
                self._record(op, resp.status_code, resp)
            else:
                task_id = self._task(session, T2M, {"model": "suno-5.5",
                                                    "prompt": "[sandbox:suno_step=3] slow"})
                if task_id:
                    time.sleep(random.uniform(0, 2))
                    resp = session.post(f"{url}/v1/tasks/{task_id}/cancel", timeout=120,
                                        json={"reason": "soak"})
                    self._record("cancel", resp.status_code, resp)
        except requests.RequestException as exc:
            with self.lock:
                self.errors.append((time.monotonic(), op, type(exc).__name__))
        finally:
            session.close()

    def run(self) -> None:
        while not self.stop.is_set():
            self.one()


def _sql(stack: TaskStack, statement: str) -> list[Any]:
    """One query on the stack's database; the first use after the Postgres restart meets a dead
    pooled connection (SQLAlchemy discards it), so try again."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    for attempt in range(3):
        try:
            with stack.db() as session:
                rows = session.execute(text(statement)).all()
                session.commit()
                return rows
        except OperationalError:
            if attempt == 2:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def _ledger_checks(stack: TaskStack) -> dict[str, Any]:
    """Per ref (task id or chat request id): holds taken vs. holds given back."""
    rows = _sql(stack,
                "SELECT ref, "
                " sum(CASE WHEN kind = 'reserve' THEN 1 ELSE 0 END) AS reserves, "
                " sum(CASE WHEN kind IN ('release', 'refund') THEN 1 ELSE 0 END) AS returns, "
                " sum(CASE WHEN kind = 'capture' THEN 1 ELSE 0 END) AS captures "
                "FROM ledger_entries WHERE ref IS NOT NULL GROUP BY ref")
    unrefunded = _sql(stack,
                      "SELECT count(*) FROM tasks t WHERE t.status IN ('failed', 'canceled') "
                      "AND t.reserved_credits > 0 AND NOT EXISTS (SELECT 1 FROM ledger_entries "
                      "l WHERE l.ref = t.id AND l.kind = 'refund')")[0][0]
    has_holds = _sql(stack, "SELECT count(*) FROM information_schema.tables "
                            "WHERE table_name = 'holds'")[0][0]
    open_holds_table = _sql(stack, "SELECT count(*) FROM holds WHERE settled_at IS NULL"
                            )[0][0] if has_holds else 0
    double = sum(1 for r in rows if r.returns > r.reserves or r.captures > r.reserves)
    open_refs = sorted(r.ref for r in rows if r.reserves > r.returns)
    return {"double_charged": double, "unrefunded": int(unrefunded),
            "open_holds": max(len(open_refs), int(open_holds_table)),
            "open_hold_refs": open_refs[:10]}


def _task_states(stack: TaskStack, ids: set[str]) -> Counter[str]:
    rows = _sql(stack, "SELECT id, status FROM tasks")
    return Counter(status for task_id, status in rows if task_id in ids)


REAP_SECONDS = float(os.environ.get("SOAK_REAP_SECONDS", "20"))


def main() -> int:
    minutes = float(os.environ.get("SOAK_MINUTES", "10"))
    concurrency = int(os.environ.get("SOAK_CONCURRENCY", "12"))
    duration = minutes * 60
    work = Path(tempfile.mkdtemp(prefix="beatra-soak-"))
    print(f"soak: {minutes} min, {concurrency} clients, logs in {work}", file=sys.stderr)

    pg = ThrowawayPostgres(max_connections=100)
    redis_server = ThrowawayRedis()
    receiver = Receiver([])
    stack: TaskStack | None = None
    faults: list[tuple[float, float, str]] = []
    try:
        pg.start()
        redis_server.start()
        stack = TaskStack(work, redis_url=redis_server.url, threads=8, env={
            "DATABASE_URL": pg.url,
            "PROMETHEUS_MULTIPROC_DIR": str(work / "prometheus"),
            "BEATRA_WEBHOOK_RETRY_SCHEDULE": "1,2,4,8,15",
            "BEATRA_LOG_LEVEL": "WARNING",
            # Chat holds of killed web workers are reaped after this (the default is 900 s).
            "BEATRA_HOLD_REAP_SECONDS": str(REAP_SECONDS),
        })
        stack.migrate()
        stack.start_sandbox()
        stack.start_gateway(workers=2)
        stack.start_task_workers(processes=1, name="tasks-a")
        stack.start_task_workers(processes=1, name="tasks-b")
        keys = []
        for i in range(4):
            account = stack.new_account(credits="100000", name=f"soak-{i}")
            stack.flask("webhooks", "set", "--account", account.account_id,
                        "--url", receiver.url, "--json")
            keys.append(account.key)
        from beatra.sandbox.media import image_bytes

        load = Load(stack, keys, image_bytes(16, 16, "png"))
        threads = [threading.Thread(target=load.run, daemon=True) for _ in range(concurrency)]
        start = time.monotonic()
        for t in threads:
            t.start()

        def fault(at_fraction: float, name: str, action: Any) -> None:
            wait = start + duration * at_fraction - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            began = time.monotonic()
            print(f"soak: fault {name}", file=sys.stderr)
            action()
            faults.append((began, time.monotonic() + FAULT_GRACE_SECONDS, name))

        def kill_task_worker() -> None:
            stack.kill("tasks-a")  # kill -9 the whole dramatiq group
            stack.start_task_workers(processes=1, name="tasks-a")

        def kill_web_worker_mid_stream() -> None:
            key = keys[0]
            resp = requests.post(f"{stack.url}/v1/chat/completions", stream=True, timeout=60,
                                 headers={"Authorization": f"Bearer {key}"},
                                 json={"model": "gpt-4o-mini", "stream": True, "messages": [
                                     {"role": "user",
                                      "content": "[sandbox:chunks=20,chunk_delay=0.3] long"}]})
            parts = resp.iter_content(None)
            next(parts)
            master = stack.procs["gateway"].pid
            for pid in children(master):
                os.kill(pid, signal.SIGKILL)
            try:
                for _ in parts:
                    pass
            except requests.RequestException:
                pass  # the cut stream: expected, it is the fault
            wait_until(lambda: len(children(master)) == 2, what="gunicorn to fork new workers")

        def flush_redis() -> None:
            import redis

            redis.Redis.from_url(redis_server.url).flushall()

        def restart_postgres() -> None:
            pg.stop()
            time.sleep(2)
            pg.start()

        for fraction, name, action in ((0.2, "kill -9 dramatiq worker", kill_task_worker),
                                       (0.4, "kill -9 web worker mid-stream",
                                        kill_web_worker_mid_stream),
                                       (0.6, "redis FLUSHALL", flush_redis),
                                       (0.8, "postgres restart", restart_postgres)):
            fault(fraction, name, action)
        remaining = start + duration - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        load.stop.set()
        for t in threads:
            t.join(timeout=180)
        print("soak: load stopped; waiting for the sweepers", file=sys.stderr)

        ids = set(load.task_ids)

        def settled() -> bool:
            states = _task_states(stack, ids)
            return sum(states[s] for s in TERMINAL) == len(ids)

        try:
            wait_until(settled, timeout=240, interval=1, what="every task to end")
        except AssertionError as exc:
            print(f"soak: {exc}", file=sys.stderr)
        states = _task_states(stack, ids)

        def webhooks_missing() -> int:
            """Ended tasks whose callback is not delivered or never reached the receiver."""
            rows = _sql(stack, "SELECT t.id, d.status FROM tasks t LEFT JOIN "
                               "webhook_deliveries d ON d.task_id = t.id "
                               "WHERE t.status IN ('succeeded','failed','canceled')")
            with receiver.event:
                received = {json.loads(body)["task_id"] for _, body in receiver.requests}
            return sum(1 for r in rows if r.id in ids
                       and (r.status != "delivered" or r.id not in received))

        try:
            wait_until(lambda: webhooks_missing() == 0, timeout=120, interval=1,
                       what="every webhook")
        except AssertionError as exc:
            print(f"soak: {exc}", file=sys.stderr)

        def open_holds() -> int:
            return int(_sql(stack, "SELECT count(*) FROM holds WHERE settled_at IS NULL")[0][0])

        try:  # holds of work killed mid-flight: reaped once their lease runs out
            wait_until(lambda: open_holds() == 0, timeout=REAP_SECONDS * 3 + 60, interval=1,
                       what="every hold to settle")
        except AssertionError as exc:
            print(f"soak: {exc}", file=sys.stderr)

        in_fault = [(t0, t1) for t0, t1, _ in faults]
        statuses = Counter(status for _, status, _ in load.responses)
        outside = sum(1 for t, status, op in load.responses
                      if status >= 500 and not op.endswith("-fault")
                      and not any(a <= t <= b for a, b in in_fault))
        # Deliberate upstream faults (sandbox fail=503 / truncate) answer 502/503 by design:
        # only 500 is never acceptable, and connection errors outside faults are reported.
        errors_outside = sum(1 for t, _, _ in load.errors
                             if not any(a <= t <= b for a, b in in_fault))
        money = _ledger_checks(stack)
        result = {
            "minutes": minutes,
            "requests": len(load.responses) + len(load.errors),
            "tasks": len(ids),
            "tasks_stuck": len(ids) - sum(states[s] for s in TERMINAL),
            **money,
            "audit": "ok" if stack.audit_ok() else "mismatch",
            "webhooks_missing": webhooks_missing(),
            "http_5xx_outside_faults": outside,
            "http_500": statuses.get(500, 0),
            "connection_errors_outside_faults": errors_outside,
            "task_states": dict(states),
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "errors": dict(load.codes.most_common(12)),
            "faults": [name for _, _, name in faults],
        }
    finally:
        if stack is not None:
            stack.close()
        receiver.close()
        redis_server.destroy()
        pg.destroy()
    print(json.dumps(result))
    bad = ("tasks_stuck", "double_charged", "unrefunded", "open_holds", "webhooks_missing",
           "http_500")
    return 1 if any(result[k] for k in bad) or result["audit"] != "ok" else 0


if __name__ == "__main__":
    sys.exit(main())
