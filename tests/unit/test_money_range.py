"""One documented amount range (issue 11): ±10^9 credits with 9 decimals, stored exactly by both
databases. The CLI refuses anything outside it with one `Error:` line, the wallet refuses a
grant that would push a balance out of it, and nothing is written when it does."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from beatra.billing import wallet
from beatra.billing.models import LedgerEntry
from beatra.billing.money import MAX_CREDITS, AmountOutOfRange, check_range, parse_credits
from beatra.extensions import db


def _invoke(runner, *args):
    return runner.invoke(args=list(args))


def _one_error_line(result) -> str:
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def _ledger_rows(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(LedgerEntry))


def _account(runner, credits: str = "0") -> str:
    result = _invoke(runner, "accounts", "create", "--name", "big", "--credits", credits,
                     "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["account_id"]


def test_the_range_rule_is_one_function():
    assert check_range(MAX_CREDITS) == MAX_CREDITS == Decimal(10**9)
    with pytest.raises(AmountOutOfRange):
        check_range(-MAX_CREDITS - Decimal("0.000000001"))


def test_parse_refuses_out_of_range_amounts():
    for text in ("1000000000.000000001", "10000000000", "1e30", "-1e30", "1e400"):
        with pytest.raises(ValueError, match="at most 1,000,000,000 credits"):
            parse_credits(text)
    assert parse_credits("1000000000") == MAX_CREDITS
    assert parse_credits("999999999.999999999") == Decimal("999999999.999999999")


@pytest.mark.parametrize("amount", ["9000000000", "10000000000", "1e30", "1000000000.1"])
def test_cli_grant_out_of_range_is_one_error_line(app, runner, amount):
    account_id = _account(runner)
    before = _ledger_rows(app)
    line = _one_error_line(_invoke(runner, "credits", "grant", "--account", account_id,
                                   "--amount", amount))
    assert "at most 1,000,000,000 credits" in line
    assert _ledger_rows(app) == before


@pytest.mark.parametrize("credits", ["1e400", "1e30", "10000000000"])
def test_cli_account_create_out_of_range_is_one_error_line(app, runner, credits):
    line = _one_error_line(_invoke(runner, "accounts", "create", "--name", "x",
                                   "--credits", credits))
    assert "at most" in line
    assert _ledger_rows(app) == 0


def test_grants_cannot_push_a_balance_out_of_range(app, runner):
    account_id = _account(runner, "900000000")
    before = _ledger_rows(app)
    line = _one_error_line(_invoke(runner, "credits", "grant", "--account", account_id,
                                   "--amount", "900000000"))
    assert "resulting balance" in line and "balance 900000000" in line
    assert _ledger_rows(app) == before
    with app.app_context():
        with pytest.raises(AmountOutOfRange):
            wallet.grant(account_id, Decimal("100000000.000000001"))
        wallet.grant(account_id, Decimal("100000000"))  # exactly the maximum is fine
        assert wallet.balance(account_id) == MAX_CREDITS
        assert all(a.ok for a in wallet.audit_all())
    assert _invoke(runner, "credits", "audit").exit_code == 0
