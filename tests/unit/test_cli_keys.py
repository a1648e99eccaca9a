"""Operator CLI for keys and accounts: names, credit limits, expiry, listings."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from beatra.timeutil import utcnow
from tests.unit.test_cli import create_account, invoke


def test_keys_create_with_name_limit_and_expiry_then_list(runner, client):
    account_id = create_account(runner, "--credits", "5")
    expires = (utcnow() + timedelta(days=30)).replace(microsecond=0)
    stamp = expires.isoformat().replace("+00:00", "Z")
    result = invoke(runner, "keys", "create", "--account", account_id, "--name", "ci bot",
                    "--credit-limit", "2.5", "--expires-at", stamp, "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["name"] == "ci bot" and created["credit_limit"] == "2.5"
    assert created["expires_at"] == stamp and created["api_key"].startswith("btr_")
    plain = json.loads(invoke(runner, "keys", "create", "--account", account_id,
                              "--json").output)
    assert (plain["name"], plain["credit_limit"], plain["expires_at"]) == (None, None, None)

    auth = {"Authorization": f"Bearer {created['api_key']}"}
    assert client.get("/v1/models", headers=auth).status_code == 200
    assert invoke(runner, "keys", "revoke", plain["key_id"]).exit_code == 0

    listed = json.loads(invoke(runner, "keys", "list", "--account", account_id,
                               "--json").output)["keys"]
    assert [k["key_id"] for k in listed] == [created["key_id"], plain["key_id"]]
    first, second = listed
    assert set(first) == {"key_id", "name", "prefix", "created_at", "last_used_at",
                          "revoked_at", "expires_at", "credit_limit", "spent"}
    assert created["api_key"].startswith(f"btr_{first['prefix']}_")
    assert (first["name"], first["credit_limit"], first["spent"]) == ("ci bot", "2.5", "0")
    assert first["expires_at"] == stamp and first["last_used_at"] is not None
    assert first["revoked_at"] is None and second["revoked_at"] is not None
    assert second["last_used_at"] is None

    text = invoke(runner, "keys", "list", "--account", account_id).output
    assert "active" in text and "revoked" in text and "ci bot" in text


def test_accounts_list(runner):
    first = create_account(runner, "--credits", "1.25")
    second = create_account(runner)
    listed = json.loads(invoke(runner, "accounts", "list", "--json").output)["accounts"]
    assert [(a["account_id"], a["name"], a["balance"]) for a in listed] == [
        (first, "acme", "1.25"), (second, "acme", "0")]
    assert all(a["created_at"].endswith("Z") for a in listed)
    assert first in invoke(runner, "accounts", "list").output


@pytest.mark.parametrize("extra", [
    ["--credit-limit", "abc"],
    ["--credit-limit", "-1"],
    ["--credit-limit", "0.0000000001"],
    ["--expires-at", "tomorrow"],
    ["--expires-at", "2001-01-01T00:00:00Z"],
    ["--name", ""],
    ["--name", "x" * 201],
])
def test_keys_create_bad_arguments_print_one_error_line(runner, extra):
    account_id = create_account(runner)
    result = invoke(runner, "keys", "create", "--account", account_id, *extra)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    listed = json.loads(invoke(runner, "keys", "list", "--account", account_id,
                               "--json").output)
    assert listed == {"keys": []}


@pytest.mark.parametrize("args", [["keys", "list"], ["keys", "list", "--account", "acct_no"],
                                  ["accounts", "list", "--bogus"]])
def test_list_bad_arguments_print_one_error_line(runner, args):
    result = invoke(runner, *args)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output


def test_keys_update_changes_budget_name_and_expiry(app, runner, client):
    from decimal import Decimal

    from beatra.billing import wallet

    account_id = create_account(runner, "--credits", "5")
    key = json.loads(invoke(runner, "keys", "create", "--account", account_id,
                            "--json").output)
    shown = json.loads(invoke(runner, "keys", "update", key["key_id"], "--json").output)
    assert (shown["credit_limit"], shown["name"], shown["expires_at"]) == (None, None, None)

    result = invoke(runner, "keys", "update", key["key_id"], "--credit-limit", "0.5",
                    "--name", "capped", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["credit_limit"] == "0.5"
    with app.app_context():
        who = wallet.Attribution(key_id=key["key_id"])
        with pytest.raises(wallet.InsufficientBalance):
            wallet.reserve(account_id, Decimal("0.6"), attribution=who)
        wallet.refund(wallet.reserve(account_id, Decimal("0.5"), attribution=who), "test")

    expires = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    stamp = expires.isoformat().replace("+00:00", "Z")
    assert invoke(runner, "keys", "update", key["key_id"], "--expires-at", stamp).exit_code == 0
    listed = json.loads(invoke(runner, "keys", "list", "--account", account_id,
                               "--json").output)["keys"][0]
    assert (listed["name"], listed["credit_limit"], listed["expires_at"]) == (
        "capped", "0.5", stamp)

    result = invoke(runner, "keys", "update", key["key_id"], "--credit-limit", "none",
                    "--expires-at", "never", "--json")
    assert (json.loads(result.output)["credit_limit"],
            json.loads(result.output)["expires_at"]) == (None, None)
    assert "capped" in invoke(runner, "keys", "update", key["key_id"]).output


@pytest.mark.parametrize("extra", [["--credit-limit", "lots"], ["--expires-at", "soon"],
                                   ["--name", " "]])
def test_keys_update_bad_arguments_change_nothing(runner, extra):
    account_id = create_account(runner)
    key = json.loads(invoke(runner, "keys", "create", "--account", account_id,
                            "--name", "kept", "--json").output)
    result = invoke(runner, "keys", "update", key["key_id"], "--credit-limit", "1", *extra)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    listed = json.loads(invoke(runner, "keys", "list", "--account", account_id,
                               "--json").output)["keys"][0]
    assert (listed["name"], listed["credit_limit"]) == ("kept", None)
    missing = invoke(runner, "keys", "update", "key_missing", "--name", "x")
    assert missing.exit_code != 0 and missing.output.startswith("Error: no such key")
