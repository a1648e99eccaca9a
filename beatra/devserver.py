"""`make run`: migrate, keep one demo account and key, start the sandbox upstream and the gateway.

The demo key is minted once and kept in `<var dir>/demo-key.json` (mode 0600), so every run
prints the same key, account id and key id; a new one is minted only if that key was revoked,
expired or deleted. Everything runs offline on 127.0.0.1. Ctrl-C stops both processes.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from beatra import devenv
from beatra.config import DEV_PORT, DEV_SANDBOX_PORT, environment_copy, var_dir
from beatra.localprocs import NotReady, wait_http

ROOT = Path(__file__).resolve().parent.parent
PORT = DEV_PORT
SANDBOX_PORT = DEV_SANDBOX_PORT
DEMO_FILE = "demo-key.json"
WEBHOOK_RECEIVER = "http://127.0.0.1:9000/hook"  # where a local test receiver might listen


def _wait_http(url: str, proc: subprocess.Popen, what: str) -> None:
    try:
        wait_http(url, proc, timeout=30)
    except NotReady as exc:
        sys.exit(f"{what}: {exc}")


def _require_free(port: int, what: str, variable: str) -> None:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            sys.exit(f"port {port} for the {what} is in use; stop what holds it or set "
                     f"{variable}")


@dataclass(frozen=True)
class DemoKey:
    account_id: str
    key_id: str
    api_key: str


def ensure_demo_key(path: Path) -> tuple[DemoKey, bool]:
    """The demo key stored at `path` while it still works, else a new one (stored there).
    Returns it and whether it was minted now. Needs an app context."""
    from sqlalchemy import select

    from beatra.accounts import service as accounts
    from beatra.accounts.models import Account
    from beatra.billing.money import parse_credits
    from beatra.extensions import db

    stored = _read(path)
    if stored is not None:
        caller = accounts.authenticate(stored.api_key)
        if caller is not None and caller.key_id == stored.key_id:
            return stored, False
    account = accounts.get_account(stored.account_id) if stored is not None else None
    if account is None:
        account = db.session.scalars(select(Account).where(Account.name == "demo")
                                     .order_by(Account.created_at)).first()
    if account is None:
        account = accounts.create_account("demo", parse_credits("1000"))
    key, secret = accounts.create_key(account.id, name="demo (make run)")
    demo = DemoKey(account.id, key.id, secret)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(asdict(demo), indent=2) + "\n")
    partial.chmod(0o600)  # a live credential
    partial.replace(path)
    return demo, True


def _read(path: Path) -> DemoKey | None:
    try:
        data = json.loads(path.read_text())
        return DemoKey(str(data["account_id"]), str(data["key_id"]), str(data["api_key"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:  # unreadable: mint a new one
        print(f"ignoring {path}: {exc}", file=sys.stderr)
        return None


def _demo_key() -> tuple[DemoKey, bool]:
    from flask_migrate import upgrade

    from beatra import create_app

    app = create_app()
    with app.app_context():
        upgrade()
        return ensure_demo_key(var_dir() / DEMO_FILE)


def cli_hints(demo: DemoKey, env: dict[str, str]) -> list[str]:
    """Operator commands for the demo account, exactly as they can be pasted into a shell in
    the directory `make run` was started from."""
    flask = Path(sys.executable).parent / "flask"
    if flask.is_relative_to(Path.cwd()):  # else it is printed absolute
        flask = flask.relative_to(Path.cwd())
    # The CLI reads the same settings as the server: pass on what this run set for it.
    keep = {name: env[name] for name in ("BEATRA_VAR_DIR", "BEATRA_CATALOG") if env.get(name)}
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in keep.items())
    base = f"{prefix + ' ' if prefix else ''}{flask} --app beatra"
    account = shlex.quote(demo.account_id)
    allow = shlex.quote(env.get("BEATRA_NET_ALLOWLIST", "127.0.0.1"))
    return [
        f"{base} credits show --account {account}",
        f"{base} credits grant --account {account} --amount 100",
        f"{base} keys list --account {account}",
        f"{base} keys create --account {account} --name second --credit-limit 5",
        # Loopback is refused for webhooks unless allowlisted, as this run allowlists it.
        f"BEATRA_NET_ALLOWLIST={allow} {base} webhooks set --account {account} "
        f"--url {WEBHOOK_RECEIVER}",
    ]


def main() -> None:
    env = environment_copy()  # the children's; this process takes its defaults too
    env.setdefault("BEATRA_SANDBOX_URL", f"http://127.0.0.1:{SANDBOX_PORT}")
    env.setdefault("BEATRA_PUBLIC_URL", f"http://127.0.0.1:{PORT}")
    env.setdefault("BEATRA_NET_ALLOWLIST", "127.0.0.1")
    os.environ.update(env)
    _require_free(PORT, "gateway", "BEATRA_PORT")
    _require_free(SANDBOX_PORT, "sandbox upstream", "BEATRA_SANDBOX_PORT")
    demo, minted = _demo_key()
    key = demo.api_key
    devenv.record(env["BEATRA_NET_ALLOWLIST"])  # the CLI in another shell applies it too

    procs = [
        subprocess.Popen([sys.executable, "-m", "beatra.sandbox", "--port", str(SANDBOX_PORT)],
                         cwd=ROOT, env=env),
    ]
    _wait_http(f"http://127.0.0.1:{SANDBOX_PORT}/health", procs[0], "sandbox upstream")
    # One web process: the embedded job runner lives inside it (no REDIS_URL).
    gw_env = {**env, "BIND": f"127.0.0.1:{PORT}", "WEB_CONCURRENCY": "1"}
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=gw_env,
    ))
    _wait_http(f"http://127.0.0.1:{PORT}/v1/health", procs[1], "gateway")

    base = f"http://127.0.0.1:{PORT}"
    # Not printed: a database URL may carry a password.
    db_note = ", with the same DATABASE_URL as this run" if env.get("DATABASE_URL") else ""
    print(f"""
beatra is running at {base} (sandbox upstream at {env['BEATRA_SANDBOX_URL']})
demo API key ({'new, ' if minted else ''}kept in {var_dir() / DEMO_FILE}): {key}
demo account {demo.account_id}, key {demo.key_id}

Try:
  curl -s {base}/v1/chat/completions \\
    -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "Hello"}}]}}'
  curl -s {base}/v1/account -H "Authorization: Bearer {key}"
  API docs: {base}/docs

Operator commands (from {Path.cwd()}{db_note}):
""" + "\n".join(f"  {hint}" for hint in cli_hints(demo, env)) + """

Ctrl-C stops it.
""", flush=True)

    def stop(*_: object) -> None:
        devenv.forget()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while all(p.poll() is None for p in procs):
        time.sleep(0.5)
    stop()


if __name__ == "__main__":
    main()
