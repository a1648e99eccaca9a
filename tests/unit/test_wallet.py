"""Money: exact decimals, conditional reserves, balance == sum(ledger)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from beatra.accounts import service
from beatra.billing import wallet
from beatra.billing.money import fmt, parse_credits


def test_fmt_and_parse():
    assert fmt(Decimal("1.500000000")) == "1.5"
    assert fmt(Decimal("0")) == "0"
    assert fmt(Decimal("0.000000001")) == "0.000000001"
    assert fmt(Decimal("-2.10")) == "-2.1"
    with pytest.raises(ValueError):
        parse_credits("0.0000000001")
    with pytest.raises(ValueError):
        parse_credits("inf")


def test_reserve_settle_refund_keep_ledger_equal_to_balance(app, ledger_ok):
    with app.app_context():
        acct = service.create_account("w", Decimal("1"))
        held = wallet.reserve(acct.id, Decimal("0.3"), "req_1")
        assert wallet.balance(acct.id) == Decimal("0.7")
        charged = wallet.settle(acct.id, held, Decimal("0.123456789"), "req_1")
        assert charged == Decimal("0.123456789")
        assert wallet.balance(acct.id) == Decimal("0.876543211")
        held = wallet.reserve(acct.id, Decimal("0.5"), "task_1")
        wallet.refund(acct.id, held, "task_1", "failed")
        assert wallet.balance(acct.id) == Decimal("0.876543211")
        kinds = [e.kind for e in reversed(wallet.recent_entries(acct.id))]
        assert kinds == ["grant", "reserve", "release", "capture", "reserve", "refund"]
        assert wallet.audit(acct.id).ok


def test_settle_never_charges_more_than_held(app, ledger_ok):
    with app.app_context():
        acct = service.create_account("w", Decimal("1"))
        held = wallet.reserve(acct.id, Decimal("0.1"), "r")
        assert wallet.settle(acct.id, held, Decimal("5"), "r") == Decimal("0.1")
        assert wallet.balance(acct.id) == Decimal("0.9")


def test_reserve_beyond_balance_is_refused_and_writes_nothing(app, ledger_ok):
    with app.app_context():
        acct = service.create_account("w", Decimal("1"))
        with pytest.raises(wallet.InsufficientBalance) as info:
            wallet.reserve(acct.id, Decimal("1.000000001"), "r")
        assert info.value.status == 402
        assert wallet.balance(acct.id) == Decimal("1")
        assert len(wallet.recent_entries(acct.id)) == 1


def test_many_small_amounts_stay_exact(app, ledger_ok):
    with app.app_context():
        acct = service.create_account("w", Decimal("1"))
        for _ in range(30):
            held = wallet.reserve(acct.id, Decimal("0.1"), "r")
            wallet.settle(acct.id, held, Decimal("0.000000007"), "r")
        assert wallet.balance(acct.id) == Decimal("1") - 30 * Decimal("0.000000007")
