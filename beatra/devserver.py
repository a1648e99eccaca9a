"""`make run`: migrate, make a demo account and key, start the sandbox upstream and the gateway.

Everything runs offline on 127.0.0.1. Ctrl-C stops both processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from beatra.config import DEV_PORT, DEV_SANDBOX_PORT
from beatra.localprocs import NotReady, wait_http

ROOT = Path(__file__).resolve().parent.parent
PORT = DEV_PORT
SANDBOX_PORT = DEV_SANDBOX_PORT


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


def _demo_key() -> str:
    from flask_migrate import upgrade
    from sqlalchemy import select

    from beatra import create_app
    from beatra.accounts import service as accounts
    from beatra.accounts.models import Account
    from beatra.billing.money import parse_credits
    from beatra.extensions import db

    app = create_app()
    with app.app_context():
        upgrade()
        account = db.session.scalars(select(Account).where(Account.name == "demo")).first()
        if account is None:
            account = accounts.create_account("demo", parse_credits("1000"))
        _, secret = accounts.create_key(account.id)
        return secret


def main() -> None:
    env = dict(os.environ)
    env.setdefault("BEATRA_SANDBOX_URL", f"http://127.0.0.1:{SANDBOX_PORT}")
    env.setdefault("BEATRA_PUBLIC_URL", f"http://127.0.0.1:{PORT}")
    env.setdefault("BEATRA_NET_ALLOWLIST", "127.0.0.1")
    os.environ.update(env)
    _require_free(PORT, "gateway", "BEATRA_PORT")
    _require_free(SANDBOX_PORT, "sandbox upstream", "BEATRA_SANDBOX_PORT")
    key = _demo_key()

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
    print(f"""
beatra is running at {base} (sandbox upstream at {env['BEATRA_SANDBOX_URL']})
demo API key (shown once): {key}

Try:
  curl -s {base}/v1/chat/completions \\
    -H "Authorization: Bearer {key}" -H "Content-Type: application/json" \\
    -d '{{"model": "gpt-4o-mini", "messages": [{{"role": "user", "content": "Hello"}}]}}'

Ctrl-C stops it.
""", flush=True)

    def stop(*_: object) -> None:
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
