"""Chat hot-path benchmark: gateway vs the same load sent straight to a fast fake upstream.

    make bench        (or: .venv/bin/python -m bench.run [--seconds 10])

Processes: the fake upstream and this load generator share one core; gunicorn with one
gevent worker (auth + validation + billing on SQLite, the product defaults) gets the other.
Reports (a) non-streaming requests/s at 32 concurrent, (b) added p50 latency at 1
concurrent, (c) 1,000 concurrent streams of 20 chunks over 5 s: completed, time to first
byte p50/p99, and the worker's peak RSS. Results also go to bench/results/chat-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from beatra.localprocs import first_child, free_port, status_kb, wait_http
from bench import loadgen
from bench.loadgen import percentile

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BODY = json.dumps({"model": "bench-chat", "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to the benchmark."}]}).encode()
STREAM_BODY = json.dumps({"model": "bench-chat", "stream": True, "messages": [
    {"role": "user", "content": "Stream to the benchmark."}]}).encode()


def _pin(cpu: int) -> list[str]:
    """taskset prefix when there are at least two cores to separate the parties."""
    if (os.cpu_count() or 1) < 2 or not Path("/usr/bin/taskset").exists():
        return []
    return ["taskset", "-c", str(cpu)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()
    if os.cpu_count() and os.cpu_count() >= 2:
        os.sched_setaffinity(0, {1})  # this load generator shares core 1 with the upstream

    tmp = Path(tempfile.mkdtemp(prefix="beatra-bench-"))
    up_port, gw_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
           "BEATRA_CATALOG": str(ROOT / "bench" / "catalog.yaml"),
           "BENCH_UPSTREAM_URL": f"http://127.0.0.1:{up_port}",
           "BEATRA_VAR_DIR": str(tmp / "var"), "BEATRA_STORAGE_URL": f"file://{tmp}/art"}
    env.pop("REDIS_URL", None)
    procs: list[subprocess.Popen] = []
    logs = (tmp / "processes.log").open("wb")
    try:
        procs.append(subprocess.Popen([*_pin(1), PY, "-m", "bench.fake_upstream", "--port",
                                       str(up_port)], cwd=ROOT, env=env, stdout=logs,
                                      stderr=logs))
        flask = [PY, "-m", "flask", "--app", "beatra"]
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        made = subprocess.run([*flask, "accounts", "create", "--name", "bench", "--credits",
                               "1000000000", "--json"], cwd=ROOT, env=env, check=True,
                              capture_output=True, text=True)
        account = json.loads(made.stdout)["account_id"]
        key = json.loads(subprocess.run([*flask, "keys", "create", "--account", account,
                                         "--json"], cwd=ROOT, env=env, check=True,
                                        capture_output=True, text=True).stdout)["api_key"]
        gw = subprocess.Popen([*_pin(0), PY, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                               "wsgi:app"], cwd=ROOT, stdout=logs, stderr=logs,
                              env={**env, "BIND": f"127.0.0.1:{gw_port}",
                                   "WEB_CONCURRENCY": "1"})
        procs.append(gw)
        wait_http(f"http://127.0.0.1:{up_port}/", procs[0])
        wait_http(f"http://127.0.0.1:{gw_port}/v1/health", gw)
        worker = first_child(gw.pid)
        report = asyncio.run(_measure(up_port, gw_port, key, args.seconds, args.streams))
        report["worker_peak_rss_mb"] = round(status_kb(worker, "VmHWM") / 1024, 1)
        report["worker_rss_now_mb"] = round(status_kb(worker, "VmRSS") / 1024, 1)
        audit = subprocess.run([*flask, "credits", "audit"], cwd=ROOT, env=env,
                               capture_output=True, text=True)
        report["ledger_audit"] = audit.stdout.strip() or (
            "audit failed: " + (audit.stderr.strip().splitlines() or ["no output"])[-1])
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)
    _print(report)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"chat-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report,
                                                                                indent=2))


async def _measure(up: int, gw: int, key: str, seconds: float, n_streams: int) -> dict:
    host = "127.0.0.1"
    auth = {"Authorization": f"Bearer {key}"}
    direct_req = loadgen.build_request(host, up, "/v1/chat/completions", BODY, {})
    gw_req = loadgen.build_request(host, gw, "/v1/chat/completions", BODY, auth)
    await loadgen.closed_loop(host, gw, gw_req, 32, 2.0)  # warm-up

    direct = await loadgen.closed_loop(host, up, direct_req, 32, seconds)
    gateway = await loadgen.closed_loop(host, gw, gw_req, 32, seconds)
    direct1 = await loadgen.closed_loop(host, up, direct_req, 1, seconds / 2)
    gateway1 = await loadgen.closed_loop(host, gw, gw_req, 1, seconds / 2)

    close = {"Connection": "close"}
    s_direct = await loadgen.streams(host, up, loadgen.build_request(
        host, up, "/v1/chat/completions", STREAM_BODY, close), n_streams)
    s_gw = await loadgen.streams(host, gw, loadgen.build_request(
        host, gw, "/v1/chat/completions", STREAM_BODY, {**auth, **close}), n_streams)

    ms = 1000
    return {
        "rps_32": {"direct": round(direct.rate()), "gateway": round(gateway.rate()),
                   "ratio": round(gateway.rate() / direct.rate(), 3),
                   "gateway_errors": gateway.errors + sum(
                       v for k, v in gateway.statuses.items() if k != 200)},
        "p50_1_ms": {"direct": round(percentile(direct1.latencies, 0.5) * ms, 3),
                     "gateway": round(percentile(gateway1.latencies, 0.5) * ms, 3),
                     "added": round((percentile(gateway1.latencies, 0.5)
                                     - percentile(direct1.latencies, 0.5)) * ms, 3)},
        "p99_32_ms": {"direct": round(percentile(direct.latencies, 0.99) * ms, 2),
                      "gateway": round(percentile(gateway.latencies, 0.99) * ms, 2)},
        "streams": {
            "count": n_streams,
            "direct_completed": len(s_direct.latencies),
            "gateway_completed": len(s_gw.latencies),
            "gateway_errors": s_gw.errors,
            "ttfb_p50_ms": {"direct": round(percentile(s_direct.ttfb, 0.5) * ms, 1),
                            "gateway": round(percentile(s_gw.ttfb, 0.5) * ms, 1)},
            "ttfb_p99_ms": {"direct": round(percentile(s_direct.ttfb, 0.99) * ms, 1),
                            "gateway": round(percentile(s_gw.ttfb, 0.99) * ms, 1)},
            "wall_s": {"direct": round(s_direct.elapsed, 2), "gateway": round(s_gw.elapsed, 2)},
        },
    }


def _print(r: dict) -> None:
    s = r["streams"]
    print(f"""
beatra chat benchmark (one gunicorn gevent worker; SQLite; auth + validation + billing)
(a) non-streaming, 32 concurrent:  direct {r['rps_32']['direct']} req/s   gateway \
{r['rps_32']['gateway']} req/s   ratio {r['rps_32']['ratio']}   \
(errors {r['rps_32']['gateway_errors']})
    p99 latency:                   direct {r['p99_32_ms']['direct']} ms   gateway \
{r['p99_32_ms']['gateway']} ms
(b) 1 concurrent, p50 latency:     direct {r['p50_1_ms']['direct']} ms   gateway \
{r['p50_1_ms']['gateway']} ms   added {r['p50_1_ms']['added']} ms
(c) {s['count']} concurrent streams (20 chunks over 5 s):
    completed                      direct {s['direct_completed']}   gateway \
{s['gateway_completed']}   (gateway errors {s['gateway_errors']})
    time to first byte p50         direct {s['ttfb_p50_ms']['direct']} ms   gateway \
{s['ttfb_p50_ms']['gateway']} ms
    time to first byte p99         direct {s['ttfb_p99_ms']['direct']} ms   gateway \
{s['ttfb_p99_ms']['gateway']} ms
    worker peak RSS                {r['worker_peak_rss_mb']} MB
ledger: {r['ledger_audit']}
""")


if __name__ == "__main__":
    main()
