"""`webhooks set` from the CLI accepts what the API of a running `make run` accepts: the
devserver's allowlist applies when the CLI's own environment sets none."""

from __future__ import annotations

import subprocess
import sys

from beatra import devenv


def _set(app, account_id: str, url: str):
    return app.test_cli_runner().invoke(args=["webhooks", "set", "--account", account_id,
                                              "--url", url])


def test_cli_uses_the_running_devservers_allowlist(make_app, make_account, monkeypatch,
                                                   tmp_path):
    monkeypatch.setenv("BEATRA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv(devenv.ALLOWLIST_ENV, raising=False)
    app = make_app()
    account = make_account()
    url = "http://127.0.0.1:9/hook"

    refused = _set(app, account.account_id, url)
    assert refused.exit_code != 0 and "--url" in refused.output

    devenv.record("127.0.0.1")  # as `make run` does, with this (live) process as its pid
    accepted = _set(app, account.account_id, url)
    assert accepted.exit_code == 0, accepted.output
    assert "BEATRA_NET_ALLOWLIST=127.0.0.1" in accepted.output

    # A file left by a devserver that is gone no longer counts.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    devenv.state_file().write_text(f'{{"pid": {dead.stdout.strip()}, '
                                   '"net_allowlist": "127.0.0.1"}')
    assert devenv.running_allowlist() is None
    devenv.forget()
    assert not devenv.state_file().exists()


def test_an_explicit_environment_wins(make_app, make_account, monkeypatch, tmp_path):
    monkeypatch.setenv("BEATRA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv(devenv.ALLOWLIST_ENV, "")
    devenv.record("127.0.0.1")
    app = make_app()
    refused = _set(app, make_account().account_id, "http://127.0.0.1:9/hook")
    assert refused.exit_code != 0
