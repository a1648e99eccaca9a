"""The gateways `make bench` puts in front of the fake upstream, one at a time.

beatra always; Portkey (npm `@portkey-ai/gateway`, in bench/peers/portkey) and LiteLLM
(PyPI `litellm[proxy]`, in bench/peers/litellm-venv) when `make bench-peers` installed them.
Each runs as one process pinned to core 0 (beatra: one gunicorn gevent worker, unless asked
for more), fully offline: no database, no Redis, no calls out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from beatra.localprocs import child_pids, status_kb, wait_http

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PEERS_DIR = ROOT / "bench" / "peers"
PORTKEY_DIR = PEERS_DIR / "portkey"
PORTKEY_PACKAGE = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway"
PORTKEY_SERVER = PORTKEY_PACKAGE / "build" / "start-server.js"
LITELLM_VENV = PEERS_DIR / "litellm-venv"
LITELLM_KEY = "sk-bench"  # master_key in bench/peers/litellm.yaml
INSTALL_HINT = "make bench-peers"
# Settings of the operator's shell that would send a peer to a real database or Redis.
_FOREIGN_ENV = ("DATABASE_URL", "REDIS_URL", "REDIS_HOST", "REDIS_CONNECTION_STRING")


@dataclass
class Stage:
    """What every gateway is started against: the fake upstream, a scratch dir, one log file."""

    upstream_port: int
    tmp: Path
    logs: IO[bytes]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def spawn(self, cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self.logs, stderr=self.logs)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            stop(proc)
        self.procs.clear()


@dataclass
class Running:
    """A gateway answering on `port`; `headers` go on every request sent through it."""

    name: str
    port: int
    headers: dict[str, str]
    setup: str
    version: str = ""
    proc: subprocess.Popen | None = None
    measured_pids: list[int] = field(default_factory=list)

    def cpu_seconds(self) -> float | None:
        """User + system CPU the serving processes have used so far (all threads)."""
        if not self.measured_pids:
            return None
        return sum(cpu_seconds(pid) for pid in self.measured_pids)

    def peak_rss_mb(self) -> float | None:
        """Largest peak RSS among the serving processes (per worker, for beatra)."""
        if not self.measured_pids:
            return None
        return round(max(status_kb(pid, "VmHWM") for pid in self.measured_pids) / 1024, 1)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(cpu: int) -> list[str]:
    """taskset prefix when there are at least two cores to separate the parties."""
    if (os.cpu_count() or 1) < 2 or not Path("/usr/bin/taskset").exists():
        return []
    return ["taskset", "-c", str(cpu)]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _offline_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    return {**env, **extra}


# --- beatra -----------------------------------------------------------------------------------


def beatra_env(stage: Stage) -> dict[str, str]:
    return _offline_env(DATABASE_URL=f"sqlite:///{stage.tmp / 'bench.db'}",
                        BEATRA_CATALOG=str(ROOT / "bench" / "catalog.yaml"),
                        BENCH_UPSTREAM_URL=f"http://127.0.0.1:{stage.upstream_port}",
                        BEATRA_VAR_DIR=str(stage.tmp / "var"),
                        BEATRA_STORAGE_URL=f"file://{stage.tmp}/art")


def _flask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "flask", "--app", "beatra", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)


def _beatra_key(env: dict[str, str]) -> str:
    _flask(env, "db", "upgrade").check_returncode()
    made = _flask(env, "accounts", "create", "--name", "bench", "--credits", "1000000000",
                  "--json")
    made.check_returncode()
    key = _flask(env, "keys", "create", "--account", json.loads(made.stdout)["account_id"],
                 "--json")
    key.check_returncode()
    return json.loads(key.stdout)["api_key"]


def _worker_pids(master: int, count: int, timeout: float = 30) -> list[int]:
    """gunicorn's workers, once `count` of them are up (or whichever are, after `timeout`)."""
    deadline = time.monotonic() + timeout
    while len(pids := child_pids(master)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def start_beatra(stage: Stage, port: int, workers: int) -> Running:
    """gunicorn with `workers` gevent workers (SQLite; auth + validation + billing): pinned to
    core 0 when there is one worker, left to the scheduler otherwise."""
    env = beatra_env(stage)
    key = _beatra_key(env)
    prefix = pin(0) if workers == 1 else []
    proc = stage.spawn([*prefix, PY, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                       {**env, "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers)})
    wait_http(f"http://127.0.0.1:{port}/v1/health", proc)
    where = "pinned to core 0" if prefix else "unpinned"
    plural = "s" if workers > 1 else ""
    return Running("beatra", port, {"Authorization": f"Bearer {key}"},
                   f"{workers} gunicorn gevent worker{plural}, {where}; SQLite; auth, "
                   "validation, billing", proc=proc, measured_pids=_worker_pids(proc.pid, workers))


def ledger_audit(stage: Stage) -> str:
    audit = _flask(beatra_env(stage), "credits", "audit")
    return audit.stdout.strip() or (
        "audit failed: " + (audit.stderr.strip().splitlines() or ["no output"])[-1])


# --- peers ------------------------------------------------------------------------------------


def _portkey_missing() -> str | None:
    if not shutil.which("node"):
        return "node is not on PATH (Node 20+ needed)"
    return None if PORTKEY_SERVER.exists() else f"not installed; run `{INSTALL_HINT}`"


def start_portkey(stage: Stage, port: int) -> Running:
    """The Node server of the npm package: headless (no console UI), production mode, one
    process; routed to the fake upstream per request with x-portkey-custom-host."""
    package = json.loads((PORTKEY_PACKAGE / "package.json").read_text())
    proc = stage.spawn([*pin(0), "node", str(PORTKEY_SERVER), "--headless", f"--port={port}"],
                       _offline_env(NODE_ENV="production"), cwd=PORTKEY_DIR)
    wait_http(f"http://127.0.0.1:{port}/", proc)
    headers = {"x-portkey-provider": "openai",
               "x-portkey-custom-host": f"http://127.0.0.1:{stage.upstream_port}/v1",
               "Authorization": "Bearer bench"}
    return Running("portkey", port, headers, "one Node process, pinned to core 0; no auth",
                   package["version"], proc, [proc.pid])


def _litellm_missing() -> str | None:
    return None if (LITELLM_VENV / "bin" / "litellm").exists() else (
        f"not installed; run `{INSTALL_HINT}`")


def _litellm_version() -> str:
    found = sorted(LITELLM_VENV.glob("lib/python*/site-packages/litellm-*.dist-info"))
    return found[0].name.removesuffix(".dist-info").split("-")[1] if found else ""


def start_litellm(stage: Stage, port: int) -> Running:
    """The proxy with bench/peers/litellm.yaml: one uvicorn worker, master key checked in
    memory (no database), the cost map read from the package instead of the internet."""
    env = _offline_env(LITELLM_LOCAL_MODEL_COST_MAP="True",
                       BENCH_UPSTREAM_V1=f"http://127.0.0.1:{stage.upstream_port}/v1")
    proc = stage.spawn([*pin(0), str(LITELLM_VENV / "bin" / "litellm"), "--config",
                        str(PEERS_DIR / "litellm.yaml"), "--host", "127.0.0.1", "--port",
                        str(port), "--num_workers", "1"], env)
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", proc, timeout=180)
    return Running("litellm", port, {"Authorization": f"Bearer {LITELLM_KEY}"},
                   "one uvicorn process, pinned to core 0; master key, no database",
                   _litellm_version(), proc, [proc.pid])


@dataclass(frozen=True)
class Peer:
    start: Callable[[Stage, int], Running]
    missing: Callable[[], str | None]


PEERS: dict[str, Peer] = {
    "portkey": Peer(start_portkey, _portkey_missing),
    "litellm": Peer(start_litellm, _litellm_missing),
}
