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
        held = wallet.reserve(acct.id, Decimal("0.3"))
        assert held.id.startswith("hold_") and held.ref == held.id
        assert wallet.balance(acct.id) == Decimal("0.7")
        charged = wallet.settle(held, Decimal("0.123456789"))
        assert charged == Decimal("0.123456789")
        assert wallet.balance(acct.id) == Decimal("0.876543211")
        held = wallet.reserve(acct.id, Decimal("0.5"), "task_1")
        assert wallet.refund(held, "failed")
        assert wallet.balance(acct.id) == Decimal("0.876543211")
        kinds = [e.kind for e in reversed(wallet.recent_entries(acct.id))]
        assert kinds == ["grant", "reserve", "release", "capture", "reserve", "refund"]
        assert wallet.audit(acct.id).ok


def test_settle_never_charges_more_than_held(app, ledger_ok):
    with app.app_context():
        acct = service.create_account("w", Decimal("1"))
        held = wallet.reserve(acct.id, Decimal("0.1"), "r")
        assert wallet.settle(held, Decimal("5")) == Decimal("0.1")
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
            wallet.settle(held, Decimal("0.000000007"))
        assert wallet.balance(acct.id) == Decimal("1") - 30 * Decimal("0.000000007")


def test_a_hold_settles_exactly_once_whoever_comes_second(app, ledger_ok):
    """A late request and the sweeper may race for the same hold: the second gets None and
    moves no money."""
    with app.app_context():
        acct = service.create_account("w", Decimal("1"))
        held = wallet.reserve(acct.id, Decimal("0.4"), attribution=wallet.Attribution(
            "key_1", "req_1", "chat.completions", "m"))
        assert wallet.settle(held, Decimal("0.1")) == Decimal("0.1")
        assert wallet.settle(held, Decimal("0.2")) is None
        assert wallet.refund(held, "late") is False
        assert wallet.balance(acct.id) == Decimal("0.9")
        assert wallet.open_holds(acct.id) == []
        rows = wallet.recent_entries(acct.id, 3)
        assert {(r.kind, r.hold_id, r.key_id, r.request_id, r.model) for r in rows} == {
            ("capture", held.id, "key_1", "req_1", "m"),
            ("release", held.id, "key_1", "req_1", "m"),
            ("reserve", held.id, "key_1", "req_1", "m")}


def test_expired_leases_are_reaped_for_their_accrual(app, ledger_ok):
    from datetime import timedelta

    from beatra.billing import holds
    from beatra.timeutil import utcnow

    with app.app_context():
        acct = service.create_account("w", Decimal("1"))
        live = wallet.reserve(acct.id, Decimal("0.5"), kind="chat", lease_seconds=60)
        dead = wallet.reserve(acct.id, Decimal("0.3"), kind="chat", lease_seconds=60)
        wallet.renew([(dead.id, Decimal("0.05"))], utcnow() - timedelta(seconds=1))
        assert [h for h, _ in holds.stale_holds(0)] == [dead.id]
        assert holds.reap_expired() == [dead.id]
        assert holds.reap_expired() == []
        assert [h.id for h in wallet.open_holds()] == [live.id]
        assert wallet.balance(acct.id) == Decimal("1") - Decimal("0.5") - Decimal("0.05")
        capture = wallet.recent_entries(acct.id, 1)[0]
        assert capture.kind == "capture" and capture.reason.startswith("hold lease expired")
        assert holds.stale_holds(0) == []
        wallet.refund(live, "done")
