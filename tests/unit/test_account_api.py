"""Self-service: GET /v1/account, GET /v1/usage, per-key credit limits, key expiry and last use,
GET /v1/models/{model}."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import responses
from sqlalchemy import select, update

from beatra.accounts import service
from beatra.accounts.models import ApiKey
from beatra.billing import wallet
from beatra.billing.models import LedgerEntry
from beatra.billing.money import fmt
from beatra.extensions import db
from beatra.timeutil import utcnow
from tests.conftest import ApiAccount
from tests.unit.chat_helpers import UP_A, UP_B, completion, user

CHAT = "/v1/chat/completions"


def new_key(app, account_id: str, **options) -> ApiAccount:
    with app.app_context():
        key, secret = service.create_key(account_id, **options)
        return ApiAccount(account_id, secret, key.id)


def key_row(app, key_id: str) -> ApiKey:
    with app.app_context():
        key = db.session.get(ApiKey, key_id)
        db.session.expunge(key)
        return key


def captures(app, account_id: str) -> list[LedgerEntry]:
    with app.app_context():
        rows = list(db.session.scalars(select(LedgerEntry).where(
            LedgerEntry.account_id == account_id, LedgerEntry.kind == "capture")))
        db.session.expunge_all()
        return rows


def chat(client, who: ApiAccount, model: str = "test-chat", max_tokens: int = 100):
    return client.post(CHAT, json={"model": model, "messages": [user()],
                                   "max_tokens": max_tokens}, headers=who.headers)


# ---- GET /v1/account --------------------------------------------------------------------------

def test_account_shows_balance_reserved_and_the_key_in_use(app, client, account, ledger_ok):
    expires = (utcnow() + timedelta(days=3)).replace(microsecond=0)
    named = new_key(app, account.account_id, name="ci bot", credit_limit=Decimal("7.5"),
                    expires_at=expires)
    with app.app_context():
        hold = wallet.reserve(account.account_id, Decimal("1.25"), kind="chat",
                              attribution=wallet.Attribution(key_id=named.key_id))
    resp = client.get("/v1/account", headers=named.headers)
    assert resp.status_code == 200
    assert resp.get_json() == {
        "object": "account", "account_id": account.account_id, "name": "test",
        "balance": "98.75", "reserved": "1.25",
        "key": {"key_id": named.key_id, "name": "ci bot", "credit_limit": "7.5", "spent": "0",
                "expires_at": expires.isoformat().replace("+00:00", "Z")},
    }
    with app.app_context():
        wallet.settle(hold, Decimal("0.000000003"))
    body = client.get("/v1/account", headers=named.headers).get_json()
    assert (body["balance"], body["reserved"]) == ("99.999999997", "0")
    assert body["key"]["spent"] == "0.000000003"
    # The plain key has no name, no limit, no expiry, and spent nothing.
    plain = client.get("/v1/account", headers=account.headers).get_json()["key"]
    assert plain == {"key_id": account.key_id, "name": None, "credit_limit": None,
                     "spent": "0", "expires_at": None}


def test_account_needs_a_key(client):
    resp = client.get("/v1/account")
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"


# ---- GET /v1/usage ----------------------------------------------------------------------------

@responses.activate
def test_usage_sums_equal_the_ledger_per_day_model_key_and_capability(app, client, make_account,
                                                                      ledger_ok):
    responses.post(UP_A, json=completion(usage={"prompt_tokens": 11, "completion_tokens": 7,
                                                "total_tokens": 18}))
    responses.post(UP_B, json=completion(usage={"prompt_tokens": 3, "completion_tokens": 1,
                                                "total_tokens": 4}))
    mine = make_account(credits="50")
    second = new_key(app, mine.account_id, name="second")
    other = make_account(credits="50", name="other")
    for who, model in [(mine, "test-chat"), (mine, "test-cheap"), (second, "test-chat"),
                       (second, "test-chat"), (other, "test-chat")]:
        assert chat(client, who, model).status_code == 200
    # One capture two days ago (moved back in time with Core: the ORM refuses ledger edits).
    first_id = min(row.id for row in captures(app, mine.account_id))
    two_days_ago = utcnow() - timedelta(days=2)
    with app.app_context():
        db.session.execute(update(LedgerEntry.__table__).where(LedgerEntry.id == first_id)
                           .values(created_at=two_days_ago))
        db.session.commit()

    rows = captures(app, mine.account_id)
    assert len(rows) == 4
    total = -sum(row.amount for row in rows)

    def groups(**params):
        resp = client.get("/v1/usage", query_string=params, headers=mine.headers)
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        assert body["object"] == "list"
        return {g["group"]: g for g in body["data"]}

    by_day = groups()
    today, earlier = utcnow().date().isoformat(), two_days_ago.date().isoformat()
    assert set(by_day) == {today, earlier}
    assert by_day[earlier] == {"group": earlier, "requests": 1, "credits": "0.025",
                               "input_tokens": 11, "output_tokens": 7}
    assert sum(Decimal(g["credits"]) for g in by_day.values()) == total
    assert sum(g["requests"] for g in by_day.values()) == 4

    by_model = groups(group_by="model")
    assert {m: (g["requests"], g["input_tokens"], g["output_tokens"])
            for m, g in by_model.items()} == {"test-chat": (3, 33, 21),
                                              "test-cheap": (1, 3, 1)}
    assert by_model["test-cheap"]["credits"] == fmt(Decimal("0.0003") + Decimal("0.0002"))

    by_key = groups(group_by="key")
    assert set(by_key) == {mine.key_id, second.key_id}
    for key_id, group in by_key.items():
        assert Decimal(group["credits"]) == key_row(app, key_id).spent  # a key's spent
        assert Decimal(group["credits"]) == -sum(r.amount for r in rows if r.key_id == key_id)

    assert groups(group_by="capability") == {"chat.completions": {
        "group": "chat.completions", "requests": 4, "credits": fmt(total),
        "input_tokens": 36, "output_tokens": 22}}

    # `to` is inclusive: a date covers the whole day; a date-time is an exact bound.
    assert set(groups(**{"from": earlier, "to": earlier})) == {earlier}
    assert groups(**{"from": today})[today]["requests"] == 3
    exact = two_days_ago.isoformat()
    assert groups(**{"from": exact, "to": exact})[earlier]["requests"] == 1
    assert groups(**{"from": "2001-01-01", "to": "2001-01-31"}) == {}


def test_usage_defaults_to_the_last_30_days(app, client, account, ledger_ok):
    with app.app_context():
        who = wallet.Attribution(key_id=account.key_id, capability="music.text_to_music",
                                 model="suno-5.5")
        for charge in ("0.5", "0.25"):
            hold = wallet.reserve(account.account_id, Decimal("1"), attribution=who)
            wallet.settle(hold, Decimal(charge), tokens=(None, None))
        old = max(row.id for row in captures(app, account.account_id))
        long_ago = utcnow() - timedelta(days=40)
        db.session.execute(update(LedgerEntry.__table__).where(LedgerEntry.id == old)
                           .values(created_at=long_ago))
        db.session.commit()
    resp = client.get("/v1/usage", query_string={"group_by": "model"}, headers=account.headers)
    assert resp.get_json()["data"] == [{"group": "suno-5.5", "requests": 1, "credits": "0.5",
                                        "input_tokens": 0, "output_tokens": 0}]
    resp = client.get("/v1/usage", query_string={"from": long_ago.date().isoformat()},
                      headers=account.headers)
    assert [g["credits"] for g in resp.get_json()["data"]] == ["0.25", "0.5"]


@pytest.mark.parametrize(("query", "param"), [
    ({"group_by": "week"}, "/group_by"),
    ({"from": "yesterday"}, "/from"),
    ({"to": "2026-13-01"}, "/to"),
    ({"from": "2026-02-02", "to": "2026-02-01"}, "/to"),
])
def test_usage_bad_parameters_are_422_with_param(client, account, query, param):
    resp = client.get("/v1/usage", query_string=query, headers=account.headers)
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["code"] == "invalid_request" and err["param"] == param


# ---- per-key credit limits --------------------------------------------------------------------

@responses.activate
def test_reserve_refused_by_key_limit_or_account_balance_says_which(app, client, make_account,
                                                                    ledger_ok):
    responses.post(UP_A, json=completion())
    rich = make_account(credits="100")
    capped = new_key(app, rich.account_id, credit_limit=Decimal("0.1"))
    resp = chat(client, capped)  # 100 output tokens alone hold 0.2
    assert resp.status_code == 402
    err = resp.get_json()["error"]
    assert err["code"] == "insufficient_balance" and err["retryable"] is False
    assert err["details"]["limit_source"] == "key_credit_limit"
    assert len(responses.calls) == 0
    assert chat(client, capped, max_tokens=20).status_code == 200  # 0.04 + input fits

    poor = make_account(credits="0.05")
    err = chat(client, poor).get_json()["error"]
    assert err["details"]["limit_source"] == "account_balance"


def test_task_holds_move_the_key_counters_with_the_wallet(app, ledger_ok):
    """The session path (own=False, used by tasks) keeps the key in the same transaction."""
    with app.app_context():
        acct = service.create_account("t", Decimal("10"))
        key, _ = service.create_key(acct.id, credit_limit=Decimal("1"))
        who = wallet.Attribution(key_id=key.id, capability="images.generations")
        first = wallet.reserve(acct.id, Decimal("0.6"), "task_a", attribution=who)
        with pytest.raises(wallet.InsufficientBalance) as info:
            wallet.reserve(acct.id, Decimal("0.5"), "task_b", attribution=who)
        assert info.value.details["limit_source"] == "key_credit_limit"
        assert wallet.balance(acct.id) == Decimal("9.4")  # the refused reserve moved nothing
        wallet.settle(first, Decimal("0.25"))
        second = wallet.reserve(acct.id, Decimal("0.75"), "task_b", attribution=who)
        assert wallet.refund(second, "failed")
        key = db.session.get(ApiKey, key.id)
        assert (key.spent, key.held) == (Decimal("0.25"), Decimal("0"))


@responses.activate
def test_forty_parallel_calls_never_take_a_key_past_its_limit(app, client, make_account,
                                                              ledger_ok):
    """Each call holds ~0.2 and captures 0.02; the key may have 0.5 captured plus held. Serial
    calls would stop after about 15; parallel ones must stop no later, and never overshoot."""
    responses.post(UP_A, json=completion())
    owner = make_account(credits="100")
    limit = Decimal("0.5")
    capped = new_key(app, owner.account_id, name="budget", credit_limit=limit)

    def call(_: int) -> tuple[int, dict | None]:
        resp = chat(client, capped)
        return resp.status_code, resp.get_json().get("error")

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(call, range(40)))
    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 402}, results
    assert 1 <= statuses.count(200) <= 15 and statuses.count(402) >= 25
    assert all(err["details"]["limit_source"] == "key_credit_limit"
               for status, err in results if status == 402)

    key = key_row(app, capped.key_id)
    assert key.held == 0 and key.spent == statuses.count(200) * Decimal("0.02") <= limit
    # Replay the key's ledger in order (movements on one key are serialised by its row lock,
    # or SQLite's write lock): captured + held never exceeded the limit at any moment.
    with app.app_context():
        rows = db.session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount).where(LedgerEntry.key_id == key.id)
            .order_by(LedgerEntry.id)).all()
    spent = held = peak = Decimal(0)
    for kind, amount in rows:  # reserve -R, release/refund +R, capture -C
        if kind == "capture":
            spent -= amount
        else:
            held -= amount
        peak = max(peak, spent + held)
    assert peak <= limit and (spent, held) == (key.spent, 0)
    # Usage equals the ledger, to the last digit.
    usage = client.get("/v1/usage", query_string={"group_by": "key"},
                       headers=owner.headers).get_json()["data"]
    assert usage == [{"group": capped.key_id, "requests": statuses.count(200),
                      "credits": fmt(key.spent), "input_tokens": 10 * statuses.count(200),
                      "output_tokens": 5 * statuses.count(200)}]


# ---- key expiry and last use ------------------------------------------------------------------

def test_an_expired_key_answers_401_like_a_revoked_one(app, client, account):
    soon = new_key(app, account.account_id, expires_at=utcnow() + timedelta(hours=1))
    assert client.get("/v1/models", headers=soon.headers).status_code == 200
    with app.app_context():
        service.update_key(soon.key_id, expires_at=utcnow() - timedelta(seconds=1))
    resp = client.get("/v1/models", headers=soon.headers)
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/v1/models", headers=account.headers).status_code == 200


def test_a_remembered_key_still_stops_at_its_expiry(app, client, account, monkeypatch):
    soon = new_key(app, account.account_id, expires_at=utcnow() + timedelta(minutes=5))
    assert client.get("/v1/models", headers=soon.headers).status_code == 200  # now remembered
    later = utcnow() + timedelta(minutes=6)
    monkeypatch.setattr(service, "utcnow", lambda: later)
    assert client.get("/v1/models", headers=soon.headers).status_code == 401
    assert client.get("/v1/models", headers=account.headers).status_code == 200


def _revoke_behind_the_cache(app, key_id: str) -> None:
    """What another process (the CLI beside a running gateway) does: the row changes, and this
    process's key cache is not told."""
    with app.app_context():
        db.session.execute(update(ApiKey).where(ApiKey.id == key_id)
                           .values(revoked_at=utcnow()))
        db.session.commit()


@pytest.mark.parametrize("app", [{"key_cache_seconds": 3600}], indirect=True)
def test_a_key_revoked_here_stops_at_once_even_while_remembered(app, client, account):
    assert client.get("/v1/models", headers=account.headers).status_code == 200
    other = new_key(app, account.account_id)
    assert client.get("/v1/models", headers=other.headers).status_code == 200
    _revoke_behind_the_cache(app, other.key_id)
    # remembered for up to key_cache_seconds: another process's revocation is not seen yet
    assert client.get("/v1/models", headers=other.headers).status_code == 200
    with app.app_context():
        assert service.revoke_key(account.key_id)  # through the service: forgotten at once
    assert client.get("/v1/models", headers=account.headers).status_code == 401


@pytest.mark.parametrize("app", [{"key_cache_seconds": 0.05}], indirect=True)
def test_a_key_revoked_elsewhere_stops_within_key_cache_seconds(app, client, account):
    assert client.get("/v1/models", headers=account.headers).status_code == 200
    _revoke_behind_the_cache(app, account.key_id)
    deadline = time.monotonic() + 5
    while client.get("/v1/models", headers=account.headers).status_code == 200:
        assert time.monotonic() < deadline, "a revoked key kept working"
        time.sleep(0.01)


@pytest.mark.parametrize("app", [{"key_cache_seconds": 0}], indirect=True)
def test_without_the_key_cache_every_request_reads_the_key(app, client, account):
    assert client.get("/v1/models", headers=account.headers).status_code == 200
    _revoke_behind_the_cache(app, account.key_id)
    assert client.get("/v1/models", headers=account.headers).status_code == 401


def test_last_used_at_is_written_coarsely(app, client, account, monkeypatch):
    assert key_row(app, account.key_id).last_used_at is None
    client.get("/v1/models", headers=account.headers)
    first = key_row(app, account.key_id).last_used_at
    assert first is not None
    marker = utcnow() - timedelta(days=1)
    with app.app_context():
        db.session.execute(update(ApiKey).where(ApiKey.id == account.key_id)
                           .values(last_used_at=marker))
        db.session.commit()
    for _ in range(5):  # within the minute: no write
        client.get("/v1/models", headers=account.headers)
    assert naive_utc(key_row(app, account.key_id).last_used_at) == naive_utc(marker)
    monkeypatch.setattr(service, "LAST_USED_EVERY_SECONDS", 0.0)
    client.get("/v1/models", headers=account.headers)
    assert naive_utc(key_row(app, account.key_id).last_used_at) > naive_utc(marker)


def naive_utc(value: datetime) -> datetime:
    """SQLite hands back naive UTC, Postgres aware datetimes in the session's zone."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


# ---- GET /v1/models/{model} -------------------------------------------------------------------

def test_retrieve_model_matches_the_list_or_404(client, account):
    listed = client.get("/v1/models", headers=account.headers).get_json()["data"]
    resp = client.get("/v1/models/test-chat", headers=account.headers)
    assert resp.status_code == 200
    assert resp.get_json() == next(m for m in listed if m["id"] == "test-chat")
    missing = client.get("/v1/models/nope", headers=account.headers)
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"
    assert client.get("/v1/models/test-chat").status_code == 401
