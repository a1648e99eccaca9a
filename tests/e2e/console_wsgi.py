"""TEST-ONLY gunicorn entry for the console browser test: `wsgi.py` plus stand-ins for
GET /v1/account and GET /v1/usage, added only when the app does not route them itself.

Those two routes are being built on another branch with exactly these response shapes; until
it merges, the console's Overview would only show its "not available on this server" notice.
Once the real routes exist this module adds nothing (delete it then, and run the test against
`wsgi:app`). Nothing here is part of beatra.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Blueprint, Flask, request
from sqlalchemy import select

from beatra import create_app
from beatra.accounts.models import Account
from beatra.auth import current_caller
from beatra.billing import wallet
from beatra.billing.models import Hold, LedgerEntry
from beatra.billing.money import fmt
from beatra.extensions import db
from beatra.tasks.runtime import start_embedded_runner

stub = Blueprint("console_test_stub", __name__, url_prefix="/v1")


@stub.get("/account")
def account() -> dict[str, Any]:
    caller = current_caller()
    acct = db.session.get(Account, caller.account_id)
    held = db.session.scalars(select(Hold.amount).where(
        Hold.account_id == caller.account_id, Hold.settled_at.is_(None))).all()
    spent = db.session.scalars(select(LedgerEntry.amount).where(
        LedgerEntry.key_id == caller.key_id, LedgerEntry.kind == "capture")).all()
    return {"object": "account", "account_id": caller.account_id,
            "name": acct.name if acct else "", "balance": fmt(wallet.balance(caller.account_id)),
            "reserved": fmt(sum(held, Decimal(0))),
            "key": {"key_id": caller.key_id, "name": None, "credit_limit": None,
                    "spent": fmt(-sum(spent, Decimal(0))), "expires_at": None}}


@stub.get("/usage")
def usage() -> dict[str, Any]:
    start = datetime.fromisoformat(request.args.get("from") or "1970-01-01").replace(tzinfo=UTC)
    end_text = request.args.get("to")
    end = (datetime.fromisoformat(end_text).replace(tzinfo=UTC) if end_text
           else datetime.now(UTC) + timedelta(days=1))
    rows = db.session.scalars(select(LedgerEntry).where(
        LedgerEntry.account_id == current_caller().account_id, LedgerEntry.kind == "capture",
        LedgerEntry.created_at >= start, LedgerEntry.created_at < end))
    days: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "requests": 0, "credits": Decimal(0), "input_tokens": 0, "output_tokens": 0})
    for row in rows:
        day = days[row.created_at.date().isoformat()]
        day["requests"] += 1
        day["credits"] -= row.amount
        day["input_tokens"] += row.input_tokens or 0
        day["output_tokens"] += row.output_tokens or 0
    return {"object": "list", "data": [
        {"group": group, **values, "credits": fmt(values["credits"])}
        for group, values in sorted(days.items())]}


def build() -> Flask:
    app = create_app()
    if not any(rule.rule == "/v1/account" for rule in app.url_map.iter_rules()):
        app.register_blueprint(stub)
    start_embedded_runner(app)
    return app


app = build()
