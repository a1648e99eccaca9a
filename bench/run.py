"""Chat hot-path benchmark: beatra and its peers in front of the same fast fake upstream, next to
the same load sent straight to that upstream.

    make bench-peers   (once: pinned Portkey and LiteLLM into bench/peers/; optional)
    make bench         (or: .venv/bin/python -m bench.run [--seconds 10] [--streams 1000]
                        [--workers 1] [--only beatra])

The fake upstream and this load generator share core 1. The gateways (beatra, then Portkey and
LiteLLM if installed; see bench/gateways.py) run one at a time, each alone on core 0, warmed
up for 2 s, then stopped before the next starts. Each is first checked to relay the upstream's
canned reply. Per gateway: non-streaming req/s, p99 and the serving processes' CPU per call
(/proc counters; steadier than req/s on a shared machine) at 32 concurrent, p50 at 1 concurrent
(and what it adds over direct), non-200 answers counted as errors; then `--streams` concurrent
streams of 20 chunks over 5 s: completed, time to first byte p50/p99, total stream time p99,
and the serving process's peak RSS. Results also go to bench/results/chat-*.json.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from beatra.localprocs import NotReady, free_port, wait_http
from bench import loadgen
from bench.fake_upstream import CANNED_REPLY
from bench.gateways import (
    PEERS,
    PY,
    ROOT,
    Running,
    Stage,
    ledger_audit,
    pin,
    start_beatra,
    stop,
)
from bench.loadgen import Result, percentile

HOST = "127.0.0.1"
PATH = "/v1/chat/completions"
GATEWAYS = ("beatra", *PEERS)
BODY = json.dumps({"model": "bench-chat", "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to the benchmark."}]}).encode()
STREAM_BODY = json.dumps({"model": "bench-chat", "stream": True, "messages": [
    {"role": "user", "content": "Stream to the benchmark."}]}).encode()


class RelayFailed(RuntimeError):
    pass


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of the 32-concurrent run (the 1-concurrent run is half)")
    parser.add_argument("--streams", type=int, default=1000,
                        help="concurrent streams per burst; 0 skips the bursts")
    parser.add_argument("--workers", type=int, default=1,
                        help="beatra gunicorn workers; more than 1 runs unpinned")
    parser.add_argument("--only", action="append", choices=GATEWAYS,
                        help="measure only this gateway (repeatable); direct is always measured")
    return parser.parse_args()


def main() -> None:
    args = _parse_args()
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})  # this load generator shares core 1 with the upstream
    tmp = Path(tempfile.mkdtemp(prefix="beatra-bench-"))
    report: dict[str, Any] = {
        "settings": {"seconds": args.seconds, "streams": args.streams,
                     "beatra_workers": args.workers},
        "targets": {}, "skipped": {}, "failed": {}}
    with (tmp / "processes.log").open("wb") as logs:
        stage = Stage(free_port(), tmp, logs)
        try:
            _run(stage, args, report)
        finally:
            stage.stop_all()
    _compare(report)
    print(_render(report))
    if report["failed"]:
        print(f"process output: {tmp / 'processes.log'}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"chat-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(report,
                                                                                indent=2))
    if report["failed"]:
        sys.exit(1)


def _run(stage: Stage, args: argparse.Namespace, report: dict[str, Any]) -> None:
    upstream = stage.spawn([*pin(1), PY, "-m", "bench.fake_upstream", "--port",
                            str(stage.upstream_port)], dict(os.environ))
    wait_http(f"http://{HOST}:{stage.upstream_port}/", upstream)
    direct = Running("direct", stage.upstream_port, {}, "the fake upstream itself")
    report["targets"]["direct"] = _bench(direct, args)
    for name in args.only or GATEWAYS:
        _bench_gateway(name, stage, args, report)


def _start(name: str, stage: Stage, args: argparse.Namespace) -> Running:
    port = free_port()
    if name == "beatra":
        return start_beatra(stage, port, args.workers)
    return PEERS[name].start(stage, port)


def _bench_gateway(name: str, stage: Stage, args: argparse.Namespace,
                   report: dict[str, Any]) -> None:
    missing = PEERS[name].missing() if name in PEERS else None
    if missing:
        report["skipped"][name] = missing
        return
    try:
        gateway = _start(name, stage, args)
        try:
            report["targets"][name] = _bench(gateway, args)
        finally:
            if gateway.proc:
                stop(gateway.proc)
    except (NotReady, RelayFailed, subprocess.CalledProcessError, requests.RequestException) \
            as exc:
        report["failed"][name] = f"{type(exc).__name__}: {exc}"
        return
    if name == "beatra":
        report["ledger_audit"] = ledger_audit(stage)


# --- measuring --------------------------------------------------------------------------------


def _post(target: Running, body: bytes) -> requests.Response:
    return requests.post(f"http://{HOST}:{target.port}{PATH}", data=body, timeout=60,
                         headers={"Content-Type": "application/json", **target.headers})


def _check_relay(target: Running) -> None:
    """One plain request must come back 200 with the fake upstream's canned reply."""
    answer = _post(target, BODY)
    if answer.status_code != 200 or CANNED_REPLY not in answer.text:
        raise RelayFailed(f"{target.name} did not relay the upstream's reply: HTTP "
                          f"{answer.status_code} {answer.text[:200]}")


def _stream_problem(target: Running) -> str | None:
    """Why one stream through `target` does not end with [DONE] (None when it does)."""
    answer = _post(target, STREAM_BODY)
    if answer.status_code == 200 and "[DONE]" in answer.text:
        return None
    return f"one stream failed: HTTP {answer.status_code} {answer.text[:200]}"


async def _measure(target: Running, seconds: float,
                   n_streams: int) -> tuple[Result, Result, Result | None]:
    request = loadgen.build_request(HOST, target.port, PATH, BODY, target.headers)
    await loadgen.closed_loop(HOST, target.port, request, 32, 2.0)  # warm-up
    cpu_before = target.cpu_seconds()
    many = await loadgen.closed_loop(HOST, target.port, request, 32, seconds)
    cpu_after = target.cpu_seconds()
    if cpu_before is not None and cpu_after is not None and many.ok:
        many.cpu_per_call = (cpu_after - cpu_before) / many.ok
    one = await loadgen.closed_loop(HOST, target.port, request, 1, seconds / 2)
    if not n_streams:
        return many, one, None
    stream = loadgen.build_request(HOST, target.port, PATH, STREAM_BODY,
                                   {**target.headers, "Connection": "close"})
    return many, one, await loadgen.streams(HOST, target.port, stream, n_streams)


def _bench(target: Running, args: argparse.Namespace) -> dict[str, Any]:
    _check_relay(target)
    problem = _stream_problem(target) if args.streams else "not asked for (--streams 0)"
    many, one, burst = asyncio.run(_measure(target, args.seconds,
                                            0 if problem else args.streams))
    return {"setup": target.setup, "version": target.version,
            "rps_32": round(many.rate()), "p99_32_ms": _ms(many.latencies, 0.99, 2),
            "cpu_us_per_call": (round(many.cpu_per_call * 1e6) if many.cpu_per_call is not None
                                else None),
            "p50_1_ms": _ms(one.latencies, 0.5, 3), "errors": _failures(many) + _failures(one),
            "streams": _stream_figures(burst, args.streams) if burst else {"skipped": problem},
            "peak_rss_mb": target.peak_rss_mb()}


def _ms(values: list[float], q: float, digits: int) -> float | None:
    return round(percentile(values, q) * 1000, digits) if values else None


def _failures(result: Result) -> int:
    return result.errors + sum(n for status, n in result.statuses.items() if status != 200)


def _stream_figures(burst: Result, count: int) -> dict[str, Any]:
    return {"count": count, "completed": len(burst.latencies),
            "failed": count - len(burst.latencies),
            "ttfb_p50_ms": _ms(burst.ttfb, 0.5, 1), "ttfb_p99_ms": _ms(burst.ttfb, 0.99, 1),
            "total_p99_ms": _ms(burst.latencies, 0.99, 1), "wall_s": round(burst.elapsed, 2)}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _compare(report: dict[str, Any]) -> None:
    """Each gateway against direct; beatra's req/s against each peer's."""
    targets = report["targets"]
    direct = targets["direct"]
    for name, figures in targets.items():
        if name == "direct":
            continue
        figures["rps_vs_direct"] = _ratio(figures["rps_32"], direct["rps_32"])
        if figures["p50_1_ms"] is not None and direct["p50_1_ms"] is not None:
            figures["added_p50_ms"] = round(figures["p50_1_ms"] - direct["p50_1_ms"], 3)
        streams = figures["streams"]
        if "total_p99_ms" in streams:
            streams["total_p99_vs_direct"] = _ratio(
                streams["total_p99_ms"], direct["streams"].get("total_p99_ms"))
    if "beatra" in targets:
        report["beatra_rps_vs"] = {
            peer: _ratio(targets["beatra"]["rps_32"], targets[peer]["rps_32"])
            for peer in PEERS if peer in targets}


# --- the table --------------------------------------------------------------------------------


def _num(value: float | None, fmt: str = ",") -> str:
    return "-" if value is None else format(value, fmt)


def _times(value: float | None) -> str:
    return "" if value is None else f" ({value}x)"


def _streams_cell(show: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], str]:
    def cell(figures: dict[str, Any]) -> str:
        streams = figures["streams"]
        return "skipped" if "skipped" in streams else show(streams)
    return cell


ROWS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("non-streaming req/s, 32 concurrent",
     lambda f: _num(f["rps_32"]) + _times(f.get("rps_vs_direct"))),
    ("p99 at 32 concurrent, ms", lambda f: _num(f["p99_32_ms"])),
    ("CPU per call at 32 concurrent, µs", lambda f: _num(f.get("cpu_us_per_call"))),
    ("p50 at 1 concurrent, ms", lambda f: _num(f["p50_1_ms"])),
    ("added p50 vs direct, ms", lambda f: _num(f.get("added_p50_ms"), "+,")),
    ("errors (non-200 or broken)", lambda f: str(f["errors"])),
    ("streams completed / failed",
     _streams_cell(lambda s: f"{s['completed']} / {s['failed']}")),
    ("stream first byte p50 / p99, ms",
     _streams_cell(lambda s: f"{_num(s['ttfb_p50_ms'])} / "
                                            f"{_num(s['ttfb_p99_ms'])}")),
    ("stream total time p99, ms",
     _streams_cell(lambda s: _num(s["total_p99_ms"])
                   + _times(s.get("total_p99_vs_direct")))),
    ("peak RSS per process, MB", lambda f: _num(f["peak_rss_mb"])),
]


def _table(targets: dict[str, dict[str, Any]]) -> list[str]:
    rows = [["", *targets]] + [[label, *(show(f) for f in targets.values())]
                               for label, show in ROWS]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def _render(report: dict[str, Any]) -> str:
    s = report["settings"]
    bursts = (f"bursts of {s['streams']} streams (20 chunks over 5 s)" if s["streams"]
              else "no stream bursts")
    lines = [f"\nchat benchmark: 32 concurrent for {s['seconds']} s, 1 concurrent for "
             f"{s['seconds'] / 2} s, {bursts}",
             *_table(report["targets"]), ""]
    if report.get("beatra_rps_vs"):
        lines.append("beatra req/s vs " + ", ".join(
            f"{peer} {_num(ratio)}x" for peer, ratio in report["beatra_rps_vs"].items()))
    for name, figures in report["targets"].items():
        version = f" {figures['version']}" if figures["version"] else ""
        lines.append(f"{name}{version}: {figures['setup']}")
        if "skipped" in figures["streams"] and s["streams"] and name != "direct":
            lines.append(f"    streams skipped: {figures['streams']['skipped']}")
    lines += [f"{name}: skipped, {why}" for name, why in report["skipped"].items()]
    lines += [f"{name}: FAILED, {why}" for name, why in report["failed"].items()]
    if "ledger_audit" in report:
        lines.append(f"ledger: {report['ledger_audit']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
