"""Webhook callbacks: registration under the SSRF rules, Standard Webhooks signatures, retries
with backoff, 410 disables, redirects are not followed, redeliver, and the sweeper."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from beatra.runtime import HANDLERS
from beatra.tasks.handlers import Done
from beatra.tasks.runtime import runtime_for
from tests.unit.tasks_helpers import FAST, finished, get, submit_direct

LOCAL = {**FAST, "net_allowlist": "127.0.0.1", "webhook_retry_schedule": (0.05, 0.05, 0.05)}


class Receiver:
    """A plain-HTTP receiver on loopback answering a scripted list of statuses."""

    def __init__(self, statuses: list[int], headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses)
        self.extra_headers = headers or {}
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.event = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.event:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()},
                                              body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.event.notify_all()
                self.send_response(status)
                for name, value in receiver.extra_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # shutdown() waits for the serving loop's next poll: keep it short (default 0.5 s)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory():
    made: list[Receiver] = []

    def make(statuses=(), headers=None) -> Receiver:
        r = Receiver(list(statuses), headers)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


APP_SETTINGS = LOCAL


def _done_handler(ctx):
    return Done(output={"ok": True}, meters={"image_count": 1}, usage={"image_count": 1})


@pytest.fixture(autouse=True)
def _instant_handler(monkeypatch):
    monkeypatch.setitem(HANDLERS, "test.instant", _done_handler)


def _submit(app, account) -> str:
    return submit_direct(app, account, "test.instant", "2")


def _register(client, account, url, status=201) -> dict:
    resp = client.put("/v1/webhook-endpoint", json={"url": url}, headers=account.headers)
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def test_local_receiver_needs_the_allowlist(make_app, make_account, receiver_factory):
    receiver = receiver_factory()
    strict = make_app(**FAST)  # no allowlist: loopback and plain http are refused
    account = _account_for(strict)
    resp = strict.test_client().put("/v1/webhook-endpoint", json={"url": receiver.url},
                                    headers=account.headers)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["param"] == "/url"
    assert strict.test_client().get("/v1/webhook-endpoint",
                                    headers=account.headers).status_code == 404


def _account_for(app):
    from beatra.accounts import service as accounts
    from tests.conftest import ApiAccount

    with app.app_context():
        acct = accounts.create_account("t", Decimal("100"))
        key, secret = accounts.create_key(acct.id)
        return ApiAccount(acct.id, secret, key.id)


def test_delivery_at_a_later_attempt_is_refused_without_the_allowlist(
        app, client, account, receiver_factory, monkeypatch, ledger_ok):
    receiver = receiver_factory()
    _register(client, account, receiver.url)
    # The allowlist is switched off after registration: delivery re-checks and refuses.
    monkeypatch.setattr(app.extensions["beatra.settings"], "net_allowlist", "")
    task_id = _submit(app, account)
    task = finished(client, account, task_id)
    assert receiver.requests == []
    assert task["callback"]["status"] == "failed" and task["callback"]["attempt_count"] == 4
    assert "not a public address" in task["callback"]["last_error"]


def test_signed_delivery_verifies_with_standardwebhooks(app, client, account, receiver_factory,
                                                         ledger_ok):
    receiver = receiver_factory()
    secret = _register(client, account, receiver.url)["secret"]
    assert secret.startswith("whsec_")
    task_id = _submit(app, account)
    task = finished(client, account, task_id)
    assert task["callback"]["status"] == "delivered"
    assert task["callback"]["attempt_count"] == 1
    assert task["callback"]["url"] == receiver.url and task["callback"]["delivered_at"]
    headers, body = receiver.requests[0]
    payload = Webhook(secret).verify(body, headers)
    assert payload["task_id"] == task_id and payload["status"] == "succeeded"
    assert headers["webhook-id"] == f"msg_{task_id}_succeeded"
    with pytest.raises(Exception):  # noqa: B017  (a wrong secret fails verification)
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)


def test_three_failures_then_success_is_delivered_on_attempt_four(
        app, client, account, receiver_factory, ledger_ok):
    receiver = receiver_factory([500, 503, 502, 200])
    _register(client, account, receiver.url)
    task_id = _submit(app, account)
    task = finished(client, account, task_id)
    assert len(receiver.requests) == 4
    assert task["callback"]["status"] == "delivered"
    assert task["callback"]["attempt_count"] == 4
    assert task["callback"]["last_error"] is None
    ids = {h["webhook-id"] for h, _ in receiver.requests}
    assert ids == {f"msg_{task_id}_succeeded"}  # one event id across retries


def test_failing_receiver_ends_failed_after_the_schedule(app, client, account, receiver_factory,
                                                         ledger_ok):
    receiver = receiver_factory([500] * 10)
    _register(client, account, receiver.url)
    task_id = _submit(app, account)
    task = finished(client, account, task_id)
    assert len(receiver.requests) == 4  # 1 + len(schedule)
    assert task["callback"]["status"] == "failed"
    assert task["callback"]["last_error"].startswith("HTTP 500")
    assert len(task["callback"]["last_error"]) <= 512


def test_410_stops_and_disables_the_endpoint(app, client, account, receiver_factory, ledger_ok):
    receiver = receiver_factory([410])
    _register(client, account, receiver.url)
    task_id = _submit(app, account)
    task = finished(client, account, task_id)
    assert len(receiver.requests) == 1
    assert task["callback"]["status"] == "failed" and task["callback"]["attempt_count"] == 1
    endpoint = client.get("/v1/webhook-endpoint", headers=account.headers).get_json()
    assert endpoint["status"] == "disabled" and "410" in endpoint["disabled_reason"]
    # A disabled endpoint gets no callbacks for later tasks.
    later = _submit(app, account)
    assert finished(client, account, later)["callback"] is None
    assert len(receiver.requests) == 1


def test_redirect_is_not_followed(app, client, account, receiver_factory, ledger_ok):
    target = receiver_factory()
    receiver = receiver_factory([302] * 10, headers={"Location": target.url})
    _register(client, account, receiver.url)
    task_id = _submit(app, account)
    task = finished(client, account, task_id)
    assert target.requests == []
    assert task["callback"]["status"] == "failed"
    assert "redirects are not followed" in task["callback"]["last_error"]


def test_redeliver(app, client, account, receiver_factory, make_account, ledger_ok):
    receiver = receiver_factory()
    secret = _register(client, account, receiver.url)["secret"]
    task_id = _submit(app, account)
    assert finished(client, account, task_id)["callback"]["status"] == "delivered"
    resp = client.post(f"/v1/tasks/{task_id}/callback/redeliver", headers=account.headers)
    assert resp.status_code == 202
    assert resp.get_json()["callback"]["attempt_count"] == 0
    task = finished(client, account, task_id)
    assert task["callback"]["status"] == "delivered" and task["callback"]["attempt_count"] == 1
    assert len(receiver.requests) == 2
    first, second = receiver.requests
    assert first[0]["webhook-id"] == second[0]["webhook-id"]
    Webhook(secret).verify(second[1], second[0])
    # Another account's task answers exactly like a missing one.
    other = make_account()
    for tid in (task_id, "task_missing"):
        resp = client.post(f"/v1/tasks/{tid}/callback/redeliver", headers=other.headers)
        assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"


def test_redeliver_without_an_endpoint_or_before_the_end(app, client, account, monkeypatch,
                                                         ledger_ok):
    from tests.unit.tasks_helpers import hold_messages

    hold_messages(app, monkeypatch)  # the task stays queued
    task_id = _submit(app, account)
    resp = client.post(f"/v1/tasks/{task_id}/callback/redeliver", headers=account.headers)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "task_not_terminal"
    client.post(f"/v1/tasks/{task_id}/cancel", headers=account.headers)
    resp = client.post(f"/v1/tasks/{task_id}/callback/redeliver", headers=account.headers)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["code"] == "webhook_not_configured"


def test_cancel_schedules_a_callback(app, client, account, receiver_factory, monkeypatch,
                                     ledger_ok):
    from tests.unit.tasks_helpers import hold_messages

    receiver = receiver_factory()
    secret = _register(client, account, receiver.url)["secret"]
    hold_messages(app, monkeypatch)
    task_id = _submit(app, account)
    assert client.post(f"/v1/tasks/{task_id}/cancel",
                       headers=account.headers).status_code == 202
    task = finished(client, account, task_id)
    assert task["callback"]["status"] == "delivered"
    payload = Webhook(secret).verify(receiver.requests[0][1], receiver.requests[0][0])
    assert payload["status"] == "canceled"


def test_sweeper_resends_a_lost_delivery(app, client, account, receiver_factory, monkeypatch,
                                         ledger_ok):
    from datetime import timedelta

    from sqlalchemy import update

    from beatra.extensions import db
    from beatra.timeutil import utcnow
    from beatra.webhooks.delivery import resend_overdue
    from beatra.webhooks.models import WebhookDelivery

    receiver = receiver_factory()
    _register(client, account, receiver.url)
    runtime = runtime_for(app)
    lost: list[str] = []
    monkeypatch.setattr(runtime, "enqueue_webhook",
                        lambda task_id, delay_seconds=0: lost.append(task_id))
    task_id = _submit(app, account)
    runtime.join(30)
    assert lost == [task_id] and receiver.requests == []  # the message vanished
    assert get(client, account, task_id)["callback"]["status"] == "pending"
    monkeypatch.undo()
    monkeypatch.setitem(HANDLERS, "test.instant", _done_handler)
    with app.app_context():
        past = utcnow() - timedelta(seconds=600)
        db.session.execute(update(WebhookDelivery).values(next_attempt_at=past,
                                                          enqueued_at=past))
        db.session.commit()
        assert resend_overdue(runtime) == [task_id]
        assert resend_overdue(runtime) == []  # stamped: one message per period
    task = finished(client, account, task_id)
    assert task["callback"]["status"] == "delivered" and len(receiver.requests) == 1


def test_endpoint_api(app, client, account, receiver_factory):
    receiver = receiver_factory()
    created = _register(client, account, receiver.url)
    assert created["secret"].startswith("whsec_") and created["status"] == "active"
    shown = client.get("/v1/webhook-endpoint", headers=account.headers).get_json()
    assert shown["secret"] is None and shown["url"] == receiver.url
    again = _register(client, account, receiver.url + "2", status=200)
    assert again["secret"] is None and again["url"] == receiver.url + "2"
    rotated = client.put("/v1/webhook-endpoint", json={"url": receiver.url,
                                                       "rotate_secret": True},
                         headers=account.headers).get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    bad = client.put("/v1/webhook-endpoint", json={"url": "ftp://x"}, headers=account.headers)
    assert bad.status_code == 422 and bad.get_json()["error"]["param"] == "/url"
    assert client.get("/v1/webhook-endpoint", headers=account.headers).get_json()["url"] == \
        receiver.url  # nothing changed
    assert client.delete("/v1/webhook-endpoint", headers=account.headers).status_code == 204
    assert client.delete("/v1/webhook-endpoint", headers=account.headers).status_code == 404


def test_cli_set_show_rotate_delete(app, account, receiver_factory):
    receiver = receiver_factory()
    runner = app.test_cli_runner()
    out = runner.invoke(args=["webhooks", "set", "--account", account.account_id,
                              "--url", receiver.url, "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["url"] == receiver.url and data["secret"].startswith("whsec_")
    shown = runner.invoke(args=["webhooks", "show", "--account", account.account_id, "--json"])
    assert json.loads(shown.output)["status"] == "active" and "whsec_" not in shown.output
    rotated = runner.invoke(args=["webhooks", "rotate-secret", "--account", account.account_id,
                                  "--json"])
    assert json.loads(rotated.output)["secret"] != data["secret"]
    refused = runner.invoke(args=["webhooks", "set", "--account", account.account_id,
                                  "--url", "https://127.0.0.2.nip.invalid/x"])
    assert refused.exit_code != 0
    assert runner.invoke(args=["webhooks", "delete", "--account",
                               account.account_id]).exit_code == 0
    assert runner.invoke(args=["webhooks", "show", "--account",
                               account.account_id]).exit_code != 0
    assert orjson.loads(rotated.output)["account_id"] == account.account_id


def test_stored_text_with_a_lone_surrogate_never_blocks_a_delivery(
        app, client, account, receiver_factory, ledger_ok):
    # Rows written before the input guard may hold text orjson refuses ("\udc00" used to reach
    # a music prompt): the envelope is still sent (U+FFFD), and redeliver really redelivers.
    receiver = receiver_factory()
    _register(client, account, receiver.url)
    task_id = submit_direct(app, account, "test.instant", "2",
                            task_input={"prompt": "odd \udc00 text"})
    task = finished(client, account, task_id)
    assert task["callback"]["status"] == "delivered", task["callback"]
    resp = client.post(f"/v1/tasks/{task_id}/callback/redeliver", headers=account.headers)
    assert resp.status_code == 202
    assert finished(client, account, task_id)["callback"]["status"] == "delivered"
    assert len(receiver.requests) == 2
    assert receiver.requests[1][1] == receiver.requests[0][1]
    assert orjson.loads(receiver.requests[0][1])["task_id"] == task_id  # valid JSON, UTF-8
