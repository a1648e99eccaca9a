"""GET /v1/tasks (filters, cursor pagination, order, expand), GET /v1/tasks/{id},
POST /v1/tasks/{id}/cancel, and tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import responses

from beatra.extensions import db
from beatra.tasks.models import Task
from beatra.tasks.service import task_id_for
from beatra.timeutil import isoformat
from tests.unit.tasks_helpers import (
    FAST,
    GEN_A,
    balance,
    hold_messages,
    images_reply,
    ledger,
    submit,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


APP_SETTINGS = FAST


def _rows(app, account_id, specs):
    """Insert finished tasks directly: (status, capability, minutes after T0) each."""
    ids = []
    with app.app_context():
        for status, capability, minute in specs:
            created = T0 + timedelta(minutes=minute)
            task = Task(id=task_id_for(created), account_id=account_id, capability=capability,
                        model="gpt-image-2", resolved_model="gpt-image-2", status=status,
                        input={"prompt": f"p{minute}"}, state={}, warnings=[],
                        output={"images": []} if status == "succeeded" else None,
                        reserved_credits=Decimal("1"), attempts=1,
                        created_at=created,
                        started_at=T0 + timedelta(minutes=minute),
                        completed_at=T0 + timedelta(minutes=minute, seconds=30))
            db.session.add(task)
            db.session.commit()
            ids.append(task.id)
    return ids


def _list(client, account, query=""):
    resp = client.get(f"/v1/tasks{query}", headers=account.headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def _walk(client, account, query):
    ids, cursor, pages = [], None, 0
    while True:
        sep = "&" if query else ""
        page = _list(client, account, f"?{query}{sep}cursor={cursor}" if cursor else
                     f"?{query}")
        pages += 1
        ids += [t["task_id"] for t in page["data"]]
        assert page["has_more"] == (page["next_cursor"] is not None)
        if not page["has_more"]:
            return ids, pages
        cursor = page["next_cursor"]


def test_pages_in_both_orders_with_filters(app, client, account):
    ids = _rows(app, account.account_id, [
        ("succeeded", "images.generations", i) if i % 3 else ("failed", "images.image_to_image", i)
        for i in range(12)])
    desc, pages = _walk(client, account, "limit=5")
    assert (desc, pages) == (ids[::-1], 3)
    asc, _ = _walk(client, account, "limit=5&order=asc")
    assert asc == ids
    failed = [i for n, i in enumerate(ids) if n % 3 == 0]
    assert _walk(client, account, "limit=2&status=failed")[0] == failed[::-1]
    assert _walk(client, account, "limit=2&status[]=failed&order=asc")[0] == failed
    assert _walk(client, account, "status=failed,succeeded&limit=100")[0] == ids[::-1]
    assert _walk(client, account, "status=failed&status=queued")[0] == failed[::-1]
    assert _walk(client, account, "capability[]=images.image_to_image")[0] == failed[::-1]
    window = f"created_after={isoformat(T0 + timedelta(minutes=3))}&" \
             f"created_before={isoformat(T0 + timedelta(minutes=8))}&order=asc&limit=2"
    assert _walk(client, account, window.replace("+", "%2B"))[0] == ids[4:8]
    # Offsets are honoured (03:00+02:00 is 01:00Z); no offset means UTC.
    shifted = "created_after=2026-01-01T02:03:30%2B02:00&created_before=2026-01-01T00:05:30"
    assert _walk(client, account, shifted)[0] == ids[4:6][::-1]


def test_cursor_is_stable_under_concurrent_inserts(app, client, account):
    ids = _rows(app, account.account_id, [("succeeded", "images.generations", i)
                                          for i in range(6)])
    first = _list(client, account, "?limit=3")
    asc_first = _list(client, account, "?limit=3&order=asc")
    newer = _rows(app, account.account_id, [("queued", "images.generations", 60),
                                            ("queued", "images.generations", 61)])
    rest = _list(client, account, f"?limit=10&cursor={first['next_cursor']}")
    assert [t["task_id"] for t in first["data"] + rest["data"]] == ids[::-1]
    asc_rest = _list(client, account, f"?limit=10&order=asc&cursor={asc_first['next_cursor']}")
    assert [t["task_id"] for t in asc_first["data"] + asc_rest["data"]] == ids + newer


@pytest.mark.parametrize(("query", "param"), [
    ("limit=0", "/limit"), ("limit=101", "/limit"), ("limit=ten", "/limit"),
    ("order=newest", "/order"), ("status=done", "/status"), ("status[]=queued,done", "/status"),
    ("capability=images.video", "/capability"), ("expand=everything", "/expand"),
    ("expand=output,secrets", "/expand"), ("created_after=yesterday", "/created_after"),
    ("created_after=2026-01-02T00:00:00Z&created_before=2026-01-01T00:00:00Z",
     "/created_before"),
    ("cursor=not-a-cursor", "/cursor"),
    ("cursor=WzFd", "/cursor"),  # base64 of [1]
    ("cursor=eyJ2IjoxLCJpZCI6InRhc2tfMSJ9", "/order"),  # a cursor without its order
])
def test_bad_list_parameters_are_422(client, account, query, param):
    resp = client.get(f"/v1/tasks?{query}", headers=account.headers)
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["param"] == param


def test_cursor_belongs_to_its_order(app, client, account):
    _rows(app, account.account_id, [("succeeded", "images.generations", i) for i in range(3)])
    cursor = _list(client, account, "?limit=1")["next_cursor"]
    resp = client.get(f"/v1/tasks?order=asc&cursor={cursor}", headers=account.headers)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["param"] == "/order"


def test_summaries_by_default_and_expand(app, client, account):
    _rows(app, account.account_id, [("succeeded", "images.generations", 1)])
    heavy = {"input", "output", "usage", "billing", "callback"}
    item = _list(client, account)["data"][0]
    assert not heavy & set(item)
    assert {"task_id", "object", "status", "capability", "model", "resolved_model", "progress",
            "error", "warnings", "metadata", "created_at", "completed_at",
            "links"} <= set(item)
    item = _list(client, account, "?expand=output,billing")["data"][0]
    assert heavy & set(item) == {"output", "billing"}
    assert item["output"] == {"images": []}
    assert item["billing"]["reserved_credits"] == "1"
    item = _list(client, account, "?expand=all")["data"][0]
    assert heavy <= set(item)
    assert item["input"] == {"prompt": "p1"} and item["callback"] is None


def test_other_accounts_never_see_a_task(app, client, account, make_account, monkeypatch):
    hold_messages(app, monkeypatch)
    other = make_account(name="other")
    task_id = submit(client, account)["task_id"]
    for method, path in (("get", f"/v1/tasks/{task_id}"), ("post", f"/v1/tasks/{task_id}/cancel"),
                         ("get", "/v1/tasks/task_nope"), ("post", "/v1/tasks/task_nope/cancel")):
        resp = getattr(client, method)(path, headers=other.headers)
        assert resp.status_code == 404, path
        assert resp.get_json()["error"]["code"] == "not_found"
        assert resp.get_json()["error"]["message"] == "No such task."
    assert _list(client, other, "?expand=all")["data"] == []
    assert client.get(f"/v1/tasks/{task_id}", headers=account.headers).get_json()[
        "status"] == "queued"


def test_cancel_a_queued_task_refunds_at_once(app, client, account, monkeypatch, ledger_ok):
    _, _sent = hold_messages(app, monkeypatch)
    task = submit(client, account)
    held = Decimal(task["billing"]["reserved_credits"])
    assert balance(client, account) == Decimal("100") - held
    resp = client.post(f"/v1/tasks/{task['task_id']}/cancel", json={"reason": "changed my mind"},
                       headers=account.headers)
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["status"] == "canceled" and body["cancel_reason"] == "changed my mind"
    assert body["cancel_requested_at"] and body["completed_at"]
    assert body["links"]["cancel"] is None and body["resolved_model"] == "gpt-image-2"
    assert body["billing"]["refunded_credits"] == task["billing"]["reserved_credits"]
    assert balance(client, account) == Decimal("100")
    again = client.post(f"/v1/tasks/{task['task_id']}/cancel", headers=account.headers)
    assert again.status_code == 200 and again.get_json()["status"] == "canceled"
    assert ledger(app, task["task_id"]) == [("reserve", -held), ("refund", held)]


def test_cancel_body_is_optional_and_reason_is_limited(app, client, account, monkeypatch):
    hold_messages(app, monkeypatch)
    task_id = submit(client, account)["task_id"]
    too_long = client.post(f"/v1/tasks/{task_id}/cancel", json={"reason": "x" * 513},
                           headers=account.headers)
    assert too_long.status_code == 422
    assert too_long.get_json()["error"]["param"] == "/reason"
    null = client.post(f"/v1/tasks/{task_id}/cancel", data="null",
                       content_type="application/json", headers=account.headers)
    assert null.status_code == 202 and null.get_json()["cancel_reason"] is None
    task_id = submit(client, account)["task_id"]
    empty = client.post(f"/v1/tasks/{task_id}/cancel", headers=account.headers)
    assert empty.status_code == 202 and empty.get_json()["status"] == "canceled"


@responses.activate
def test_cancel_after_success_returns_the_final_state(client, account, ledger_ok):
    from tests.unit.tasks_helpers import finished

    responses.post(GEN_A, json=images_reply(1))
    task = finished(client, account, submit(client, account)["task_id"])
    assert task["status"] == "succeeded"
    resp = client.post(f"/v1/tasks/{task['task_id']}/cancel", headers=account.headers)
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "succeeded"
    assert resp.get_json()["billing"] == task["billing"]
