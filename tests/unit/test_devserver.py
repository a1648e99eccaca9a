"""`make run` keeps one demo key across runs, and the operator commands it prints work."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from flask_migrate import upgrade

from beatra import create_app
from beatra.accounts import service
from beatra.devserver import DEMO_FILE, cli_hints, ensure_demo_key
from beatra.extensions import db


def test_demo_key_is_kept_across_runs_and_replaced_only_when_dead(tmp_path):
    var = tmp_path / "var"
    app = create_app({"database_url": f"sqlite:///{var / 'beatra.db'}"})
    path = var / DEMO_FILE
    with app.app_context():
        upgrade()
        first, minted = ensure_demo_key(path)
        assert minted and path.stat().st_mode & 0o777 == 0o600
        assert json.loads(path.read_text())["api_key"] == first.api_key
        again, minted = ensure_demo_key(path)
        assert (again, minted) == (first, False)
        assert len(service.list_keys(first.account_id)) == 1  # no new key per run

        service.revoke_key(first.key_id)
        replaced, minted = ensure_demo_key(path)
        assert minted and replaced.account_id == first.account_id
        assert replaced.key_id != first.key_id
        assert service.authenticate(replaced.api_key) is not None
        db.engine.dispose()


def test_printed_commands_work_as_printed(tmp_path):
    var = tmp_path / "var"
    app = create_app({"database_url": f"sqlite:///{var / 'beatra.db'}"})
    with app.app_context():
        upgrade()
        demo, _ = ensure_demo_key(var / DEMO_FILE)
        db.engine.dispose()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "BEATRA_NET_ALLOWLIST", "BEATRA_CATALOG")}
    env["BEATRA_VAR_DIR"] = str(var)
    hints = cli_hints(demo, {"BEATRA_VAR_DIR": str(var), "BEATRA_NET_ALLOWLIST": "127.0.0.1"})
    assert any(" webhooks set " in h and "http://127.0.0.1:" in h for h in hints)
    outputs = []
    for hint in hints:
        result = subprocess.run(["bash", "-c", hint], cwd=Path.cwd(), env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (hint, result.stdout, result.stderr)
        outputs.append(result.stdout)
    assert demo.account_id in outputs[0] and "balance 1100" in outputs[1]
    assert demo.key_id in outputs[2]
    assert "webhook endpoint for" in outputs[-1]

