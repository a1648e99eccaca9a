"""Real processes on loopback for end-to-end tests: the sandbox upstream and gunicorn with the
gevent worker against one temporary SQLite database, plus the operator CLI on that database.

Operator commands run in this process by default (`Stack.cli`: the same click commands on an
app built from the same environment), because a `flask` subprocess costs ~2-3 s of
interpreter and app start-up per call; `Stack.flask` runs the real CLI where that is the test.

A module-scoped `stack` fixture is `yield from running(...)` (or `chat_stack(...)`, the chat
modules' setup); what differs between modules (directory name, catalog, environment) is
passed in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Self, TypeVar
from unittest import mock

from click.testing import Result
from flask import Flask

from beatra import localprocs
from beatra.localprocs import free_port

ROOT = Path(__file__).resolve().parents[2]
# The chat modules' catalog: sandbox chat models, and a `dead` provider at DEAD_UPSTREAM_URL.
CHAT_CATALOG = ROOT / "tests" / "catalogs" / "e2e_chat.yaml"


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    try:
        localprocs.wait_http(url, proc, timeout=timeout)
    except localprocs.NotReady as exc:
        raise RuntimeError(f"{exc}\n{log.read_text()}") from None


class Stack:
    """One gateway stack in `workdir`. Start what a test needs; stop() ends it all."""

    def __init__(self, workdir: Path, catalog: Path | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.dir = workdir
        self.sandbox_port = free_port()
        self.port = free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {
            # Nothing of the caller's beatra setup leaks in; Redis mode only when asked for.
            **{k: v for k, v in os.environ.items()
               if not k.startswith("BEATRA_") and k != "REDIS_URL"},
            # The suite's database choice (Postgres in CI's second run) applies here too.
            "DATABASE_URL": os.environ.get("BEATRA_TEST_DATABASE_URL")
            or f"sqlite:///{workdir / 'beatra.db'}",
            "BEATRA_CATALOG": str(catalog or ROOT / "catalogs" / "sandbox.yaml"),
            "BEATRA_SANDBOX_URL": f"http://127.0.0.1:{self.sandbox_port}",
            "BEATRA_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "BEATRA_STORAGE_URL": f"file://{workdir / 'artifacts'}",
            "BEATRA_VAR_DIR": str(workdir / "var"),
            "BEATRA_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self._app: Flask | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    def _spawn(self, name: str, args: list[str], extra_env: Mapping[str, str] | None = None
               ) -> tuple[subprocess.Popen, Path]:
        log = self.dir / f"{name}.log"
        proc = subprocess.Popen(args, cwd=ROOT, env={**self.env, **(extra_env or {})},
                                stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = proc
        return proc, log

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The real operator CLI, `flask --app beatra ...`, in a new process."""
        return subprocess.run([sys.executable, "-m", "flask", "--app", "beatra", *args],
                              cwd=ROOT, env=self.env, capture_output=True, text=True,
                              check=check, timeout=60)

    @contextmanager
    def _environment(self) -> Iterator[None]:
        """This process's environment is the stack's while the block runs (settings and the
        catalog's ${VAR}s are read from it, as in the stack's own processes)."""
        with mock.patch.dict(os.environ, self.env, clear=True):
            yield

    @property
    def app(self) -> Flask:
        """The app `flask` builds for this stack, in this process: the same settings and
        database (no server; its task runtime is never started), for operator commands and
        direct checks."""
        if self._app is None:
            from beatra import create_app

            with self._environment():
                self._app = create_app()
        return self._app

    def cli(self, *args: str, check: bool = True) -> Result:
        """An operator command (`flask ... args`) run in this process on `app`."""
        with self._environment():
            result = self.app.test_cli_runner().invoke(args=list(args))
        if check and result.exit_code != 0:
            raise AssertionError(f"flask {' '.join(args)} exited {result.exit_code}:\n"
                                 f"{result.output}") from result.exception
        return result

    def migrate(self) -> None:
        self.cli("db", "upgrade")

    def start_sandbox(self, wait: bool = True) -> None:
        """Start the sandbox upstream; `wait=False` returns at once (wait_sandbox later)."""
        self._spawn("sandbox", [sys.executable, "-m", "beatra.sandbox",
                                "--port", str(self.sandbox_port)])
        if wait:
            self.wait_sandbox()

    def wait_sandbox(self) -> None:
        wait_http(f"{self.sandbox_url}/health", self.procs["sandbox"], self.dir / "sandbox.log")

    def start_gateway(self, workers: int = 1) -> None:
        # The free port can be taken before gunicorn binds it (CI runs two suites side by
        # side): when gunicorn could not bind, start it again on a fresh port.
        for attempt in range(3):
            proc, log = self._spawn(
                "gateway", [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                            "wsgi:app"],
                {"BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": str(workers)})
            try:
                localprocs.wait_http(f"{self.url}/v1/health", proc, timeout=60)
                return
            except localprocs.NotReady as exc:
                output = log.read_text(errors="replace")
                if attempt == 2 or proc.poll() is None or "Can't connect to" not in output:
                    raise RuntimeError(f"{exc}\n{output}") from None
            self.port = free_port()
            self.env["BEATRA_PUBLIC_URL"] = self.url

    def start(self, web_workers: int = 1) -> Self:
        """Migrate the database, start the sandbox and the gateway (the sandbox boots while
        the database migrates)."""
        self.start_sandbox(wait=False)
        self.migrate()
        self.wait_sandbox()
        self.start_gateway(workers=web_workers)
        return self

    def create_account(self, credits: str = "100", name: str = "e2e",
                       streams: int | None = None) -> tuple[str, str]:
        """(account id, API key), through the CLI; `streams` limits the key's open streams."""
        out = self.cli("accounts", "create", "--name", name, "--credits", credits, "--json")
        account_id = json.loads(out.stdout)["account_id"]
        created = json.loads(self.cli("keys", "create", "--account", account_id,
                                      "--json").stdout)
        if streams is not None:
            self.cli("keys", "limits", created["key_id"], "--streams", str(streams))
        return account_id, created["api_key"]

    def balance(self, account_id: str) -> Decimal:
        out = self.cli("credits", "show", "--account", account_id, "--json")
        return Decimal(json.loads(out.stdout)["balance"])

    def ledger(self, account_id: str, limit: int = 1000) -> list[dict]:
        out = self.cli("credits", "show", "--account", account_id, "--json",
                       "--limit", str(limit))
        return json.loads(out.stdout)["ledger"]

    def audit_ok(self) -> bool:
        return self.cli("credits", "audit", check=False).exit_code == 0

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def close(self) -> None:
        if self._app is not None:
            from beatra.extensions import db

            with self._app.app_context():
                db.engine.dispose()
        self.stop()


S = TypeVar("S", bound=Stack)


def running(stack: S) -> Iterator[S]:
    """`stack`, started; closed when the generator is (a module-scoped fixture's body:
    `yield from running(...)`). A start that fails still stops what it had started."""
    try:
        yield stack.start()
    finally:
        stack.close()


def chat_stack(tmp_path_factory: Any, name: str, **env: str) -> Iterator[Stack]:
    """The chat modules' stack (`running`): CHAT_CATALOG with its dead provider on a closed
    port, in a fresh directory `name`, with `env` on top."""
    dead = f"http://127.0.0.1:{free_port()}"
    return running(Stack(tmp_path_factory.mktemp(name), CHAT_CATALOG,
                         env={"DEAD_UPSTREAM_URL": dead, **env}))
