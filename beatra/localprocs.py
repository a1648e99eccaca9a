"""Helpers for running beatra's processes on loopback: `make run`, the e2e tests, the
benchmarks. Never used by the service itself."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import requests


class NotReady(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, *, timeout: float = 60) -> None:
    """Until `url` answers 2xx. Raises NotReady if `proc` exits or time runs out; a slow
    first answer on a busy machine is not a failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NotReady(f"{url}: the process exited with code {proc.returncode}")
        try:
            if requests.get(url, timeout=5).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise NotReady(f"{url} did not answer within {timeout:.0f}s")


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc), e.g. gunicorn's workers."""
    out: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    if task_dir.exists():
        for tid in task_dir.iterdir():
            out += [int(p) for p in (tid / "children").read_text().split()]
    return out


def first_child(pid: int, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = child_pids(pid)
        if children:
            return children[0]
        time.sleep(0.05)
    raise NotReady(f"process {pid} started no child within {timeout:.0f}s")


def status_kb(pid: int, field: str) -> int:
    """A kB field of /proc/<pid>/status, e.g. VmRSS or VmHWM (peak RSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)
