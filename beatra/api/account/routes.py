"""GET /v1/account and GET /v1/usage: the caller's own balance, key and spending."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from flask_smorest import Blueprint

from beatra.api.account.schemas import AccountSchema, UsageListSchema, UsageQuerySchema
from beatra.api.docs import REQUEST_ID_HEADER, operation
from beatra.auth import current_caller
from beatra.billing import usage
from beatra.billing.money import fmt
from beatra.errors import unauthorized
from beatra.timeutil import isoformat, utcnow

blp = Blueprint("account", __name__, url_prefix="/v1")

DEFAULT_DAYS = 30


@blp.route("/account", methods=["GET"])
@operation(blp, "get_account_v1_account_get")
@blp.response(200, AccountSchema, headers=REQUEST_ID_HEADER)
def get_account() -> dict[str, Any]:
    """Your account

    Balance, credits held by work in flight, and the API key this request used, with its
    credit limit and what it has spent.
    """
    caller = current_caller()
    seen = usage.overview(caller.account_id, caller.key_id)
    if seen is None:  # the key or account vanished after authentication
        raise unauthorized("Invalid, revoked or expired API key.")
    key = seen.key
    return {
        "account_id": seen.account.id, "name": seen.account.name,
        "balance": fmt(seen.balance), "reserved": fmt(seen.reserved),
        "key": {"key_id": key.id, "name": key.name, "credit_limit": fmt(key.credit_limit),
                "spent": fmt(key.spent), "expires_at": isoformat(key.expires_at)},
    }


@blp.route("/usage", methods=["GET"])
@operation(blp, "get_usage_v1_usage_get")
@blp.arguments(UsageQuerySchema, location="query")
@blp.response(200, UsageListSchema, headers=REQUEST_ID_HEADER)
def get_usage(args: dict[str, Any]) -> dict[str, Any]:
    """Your usage

    Settled calls and tasks of your account (all its keys), summed per day, model, key or
    capability. `credits` is exactly what the ledger captured.
    """
    end, end_inclusive = _end(args.get("end"))
    if args.get("start") is not None:
        start = args["start"][0]
    else:
        last_day = (end - timedelta(microseconds=1) if not end_inclusive else end).date()
        start = datetime.combine(last_day - timedelta(days=DEFAULT_DAYS - 1), time(), end.tzinfo)
    rows = usage.usage(current_caller().account_id, start, end, args["group_by"],
                       end_inclusive=end_inclusive)
    return {"data": [{"group": r.group, "requests": r.requests, "credits": fmt(r.credits),
                      "input_tokens": r.input_tokens, "output_tokens": r.output_tokens}
                     for r in rows]}


def _end(given: tuple[datetime, bool] | None) -> tuple[datetime, bool]:
    """(bound, inclusive): a date covers its whole day, so it ends before the next one."""
    if given is None:
        return utcnow(), True
    value, is_date = given
    return (value + timedelta(days=1), False) if is_date else (value, True)
