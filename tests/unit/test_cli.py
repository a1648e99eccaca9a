"""The operator CLI is a public interface: exact forms, JSON output, clean failures."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from beatra.billing.models import LedgerEntry
from beatra.extensions import db


def invoke(runner, *args):
    return runner.invoke(args=list(args))


def create_account(runner, *extra) -> str:
    result = invoke(runner, "accounts", "create", "--name", "acme", *extra, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["account_id"]


def ledger_rows(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(LedgerEntry))


def test_account_key_credits_round_trip(app, runner, client):
    account_id = create_account(runner, "--credits", "12.5")
    result = invoke(runner, "keys", "create", "--account", account_id, "--json")
    assert result.exit_code == 0
    key = json.loads(result.output)
    assert key["api_key"].startswith("btr_") and key["key_id"].startswith("key_")
    assert len(key["api_key"]) > 43  # 32 random bytes, base64url, plus prefix

    assert client.get("/v1/models",
                      headers={"Authorization": f"Bearer {key['api_key']}"}).status_code == 200

    result = invoke(runner, "credits", "grant", "--account", account_id, "--amount", "0.25",
                    "--reason", "top-up")
    assert result.exit_code == 0, result.output
    shown = json.loads(invoke(runner, "credits", "show", "--account", account_id, "--json").output)
    assert shown["balance"] == "12.75"
    assert [e["kind"] for e in shown["ledger"]] == ["grant", "grant"]
    assert shown["ledger"][0]["reason"] == "top-up"

    text = invoke(runner, "credits", "show", "--account", account_id).output
    assert "balance 12.75" in text

    assert invoke(runner, "keys", "revoke", key["key_id"]).exit_code == 0
    assert client.get("/v1/models",
                      headers={"Authorization": f"Bearer {key['api_key']}"}).status_code == 401
    # Revoking twice is an error, not a silent success.
    assert invoke(runner, "keys", "revoke", key["key_id"]).exit_code != 0


def test_text_output_without_json(runner):
    result = invoke(runner, "accounts", "create", "--name", "plain")
    assert result.exit_code == 0 and "created account acct_" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["accounts", "create"],
        ["accounts", "create", "--name", ""],
        ["accounts", "create", "--name", "x", "--credits", "abc"],
        ["accounts", "create", "--name", "x", "--credits", "-1"],
        ["accounts", "create", "--name", "x", "--credits", "0.0000000001"],
        ["keys", "create", "--account", "acct_missing"],
        ["keys", "create"],
        ["keys", "revoke", "key_missing"],
        ["credits", "grant", "--account", "acct_missing", "--amount", "5"],
        ["credits", "show", "--account", "acct_missing"],
    ],
)
def test_bad_arguments_fail_and_write_nothing(app, runner, args):
    before = ledger_rows(app)
    result = invoke(runner, *args)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert ledger_rows(app) == before


@pytest.mark.parametrize("amount", ["0", "-3", "1e999999", "NaN", "x"])
def test_grant_rejects_bad_amounts(app, runner, amount):
    account_id = create_account(runner)
    before = ledger_rows(app)
    result = invoke(runner, "credits", "grant", "--account", account_id, "--amount", amount)
    assert result.exit_code != 0
    assert ledger_rows(app) == before


def test_audit_command(runner):
    create_account(runner, "--credits", "3")
    result = invoke(runner, "credits", "audit")
    assert result.exit_code == 0 and result.output.startswith("ok")
