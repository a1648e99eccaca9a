"""Task benchmark: N image tasks submitted at once against the sandbox upstream.

    .venv/bin/python -m bench.tasks_bench [--tasks 500] [--mode embedded|redis]
        [--submitters 50] [--threads 16] [--processes 1] [--web-workers 1]

Starts the sandbox, gunicorn (gevent worker) and, in Redis mode, `dramatiq beatra.tasks.worker`
processes (the e2e harness, tests/e2e/procs.py; Redis mode uses BENCH_REDIS_URL or db 12 on
localhost, flushing it before and after: never the test suite's db 15). Submits --tasks
text-to-image tasks from --submitters threads at once (1:1 JPEG, the cheapest image the sandbox
makes), then waits until none is queued or running. Reports submissions/s, completed tasks/s
(first submission to last completion), and checks that none was lost or charged twice: every
task succeeded, each has exactly one capture in the ledger, and every balance equals its
ledger. Results also go to bench/results/tasks-<mode>.json. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.procs import TaskStack  # noqa: E402


def _submit_all(base: str, key: str, n: int, submitters: int) -> tuple[list[str], float, float]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=submitters)
    session.mount("http://", adapter)

    def one(i: int) -> tuple[int, str]:
        resp = session.post(f"{base}/v1/images/generations", timeout=120, json={
            "model": "gpt-image-2", "prompt": f"benchmark tile number {i}",
            "aspect_ratio": "1:1", "output_format": "jpeg"})
        return resp.status_code, resp.json().get("task_id", resp.text)

    start = time.monotonic()
    with ThreadPoolExecutor(submitters) as pool:
        results = list(pool.map(one, range(n)))
    end = time.monotonic()
    bad = [r for r in results if r[0] != 202]
    if bad:
        sys.exit(f"{len(bad)} submissions failed, e.g. {bad[0]}")
    return [task_id for _, task_id in results], start, end


def _statuses(stack: TaskStack, ids: list[str]) -> Counter[str]:
    from sqlalchemy import func, select

    from beatra.tasks.models import Task

    with stack.db() as session:
        rows = session.execute(select(Task.status, func.count()).where(Task.id.in_(ids))
                               .group_by(Task.status)).all()
    return Counter({status: count for status, count in rows})


def _captures(stack: TaskStack, ids: list[str]) -> Counter[str]:
    from sqlalchemy import select

    from beatra.billing.models import LedgerEntry

    with stack.db() as session:
        refs = session.scalars(select(LedgerEntry.ref).where(LedgerEntry.kind == "capture",
                                                             LedgerEntry.ref.in_(ids)))
        return Counter(refs)


def _completion_span(stack: TaskStack, ids: list[str]) -> float:
    from sqlalchemy import func, select

    from beatra.tasks.models import Task

    with stack.db() as session:
        first, last = session.execute(select(func.min(Task.created_at),
                                             func.max(Task.completed_at))
                                      .where(Task.id.in_(ids))).one()
    return (last - first).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--mode", choices=("embedded", "redis"), default="embedded")
    parser.add_argument("--submitters", type=int, default=50)
    parser.add_argument("--threads", type=int, default=16, help="task threads per process")
    parser.add_argument("--processes", type=int, default=1, help="dramatiq processes (redis)")
    parser.add_argument("--web-workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    redis_url = None
    if args.mode == "redis":
        import redis

        redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
        redis.Redis.from_url(redis_url).flushdb()
    with tempfile.TemporaryDirectory(prefix="beatra-tasks-bench-") as tmp:
        # A long requeue period: at this load a queued task legitimately waits a while.
        stack = TaskStack(Path(tmp), redis_url=redis_url, threads=args.threads,
                          env={"BEATRA_TASK_REQUEUE_SECONDS": "300",
                               "BEATRA_TASK_LEASE_SECONDS": "30",
                               "BEATRA_TASK_HEARTBEAT_SECONDS": "5",
                               "BEATRA_TASK_SWEEP_SECONDS": "10"})
        try:
            stack.migrate()
            stack.start_sandbox()
            stack.start_gateway(workers=args.web_workers)
            if redis_url:
                stack.start_task_workers(processes=args.processes)
            acct = stack.new_account("100000", name="bench")
            ids, t0, t_sub = _submit_all(stack.url, acct.key, args.tasks, args.submitters)
            deadline = time.monotonic() + args.timeout
            while True:
                counts = _statuses(stack, ids)
                if not counts["queued"] and not counts["running"]:
                    break
                if time.monotonic() > deadline:
                    sys.exit(f"not finished after {args.timeout}s: {dict(counts)}")
                time.sleep(0.25)
            t_done = time.monotonic()
            captures = _captures(stack, ids)
            result = {
                "mode": args.mode,
                "tasks": args.tasks,
                "submitters": args.submitters,
                "task_threads": args.threads,
                "worker_processes": args.processes if redis_url else 0,
                "web_workers": args.web_workers,
                "submit_seconds": round(t_sub - t0, 3),
                "submissions_per_s": round(args.tasks / (t_sub - t0), 1),
                "wall_seconds": round(t_done - t0, 3),
                "completion_span_seconds": round(_completion_span(stack, ids), 3),
                "statuses": dict(counts),
                "lost": args.tasks - counts["succeeded"],
                "charged_twice": sum(1 for n in captures.values() if n > 1),
                "uncharged": args.tasks - len(captures),
                "ledger_ok": stack.audit_ok(),
                "cpus": os.cpu_count(),
            }
            result["tasks_per_s"] = round(args.tasks / result["completion_span_seconds"], 1)
        finally:
            stack.close()
            if redis_url:  # the workers' heartbeats and queues: leave nothing behind
                redis.Redis.from_url(redis_url).flushdb()
    out = ROOT / "bench" / "results" / f"tasks-{args.mode}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['tasks']} image tasks ({result['mode']}): submitted at "
          f"{result['submissions_per_s']}/s, completed {result['tasks_per_s']} tasks/s "
          f"(first submission to last completion {result['completion_span_seconds']} s); "
          f"lost {result['lost']}, charged twice {result['charged_twice']}, "
          f"uncharged {result['uncharged']}, ledger ok {result['ledger_ok']}")
    if result["lost"] or result["charged_twice"] or result["uncharged"] or not result["ledger_ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
