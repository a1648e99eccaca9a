"""Migration 0008 backfills key counters from the ledger and open holds, and downgrades."""

from __future__ import annotations

from decimal import Decimal

from flask_migrate import downgrade, upgrade
from sqlalchemy import column, insert, select, table

from beatra import create_app
from beatra.billing.money import Credits
from beatra.extensions import db
from beatra.timeutil import utcnow


def test_key_counters_are_backfilled_and_the_migration_reverses(tmp_path):
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'm.db'}"})
    now = utcnow()
    with app.app_context():
        upgrade(revision="0007")
        accounts = table("accounts", column("id"), column("name"), column("created_at"))
        keys = table("api_keys", column("id"), column("account_id"), column("prefix"),
                     column("secret_hash"), column("created_at"))
        ledger = table("ledger_entries", column("account_id"), column("kind"),
                       column("amount", Credits()), column("key_id"), column("created_at"))
        holds = table("holds", column("id"), column("account_id"), column("kind"),
                      column("amount", Credits()), column("ref"), column("key_id"),
                      column("accrued", Credits()), column("created_at"),
                      column("settled_at"))
        conn = db.session
        conn.execute(insert(accounts).values(id="acct_1", name="a", created_at=now))
        conn.execute(insert(keys).values(id="key_1", account_id="acct_1", prefix="p1",
                                         secret_hash="x", created_at=now))
        conn.execute(insert(keys).values(id="key_2", account_id="acct_1", prefix="p2",
                                         secret_hash="y", created_at=now))
        conn.execute(insert(ledger), [
            {"account_id": "acct_1", "kind": "capture", "amount": Decimal("-0.123456789"),
             "key_id": "key_1", "created_at": now},
            {"account_id": "acct_1", "kind": "capture", "amount": Decimal("-1"),
             "key_id": "key_1", "created_at": now},
            {"account_id": "acct_1", "kind": "capture", "amount": Decimal("-5"),
             "key_id": None, "created_at": now},
        ])
        conn.execute(insert(holds), [
            {"id": "hold_1", "account_id": "acct_1", "kind": "chat", "amount": Decimal("0.5"),
             "ref": "hold_1", "key_id": "key_1", "accrued": 0, "created_at": now,
             "settled_at": None},
            {"id": "hold_2", "account_id": "acct_1", "kind": "chat", "amount": Decimal("9"),
             "ref": "hold_2", "key_id": "key_1", "accrued": 0, "created_at": now,
             "settled_at": now},
        ])
        conn.commit()

        upgrade(revision="0008")
        counters = table("api_keys", column("id"), column("spent", Credits()),
                         column("held", Credits()), column("credit_limit", Credits()))
        rows = {r.id: (r.spent, r.held, r.credit_limit)
                for r in db.session.execute(select(counters))}
        assert rows == {"key_1": (Decimal("1.123456789"), Decimal("0.5"), None),
                        "key_2": (Decimal("0"), Decimal("0"), None)}
        db.session.commit()
        downgrade(revision="0007")
        upgrade(revision="0008")
        db.session.remove()
        db.engine.dispose()
