"""The task engine: claims, duplicates, crash recovery by the sweeper, fencing of a worker that
lost its claim, cancel at a checkpoint, delayed checks (Wait), the attempt limit — and that
none of it ever charges or refunds twice."""

from __future__ import annotations

import threading
from decimal import Decimal
from types import SimpleNamespace

import pytest
import responses

from beatra.runtime import HANDLERS
from beatra.tasks import states
from beatra.tasks.handlers import Done, Wait
from beatra.tasks.runtime import runtime_for
from beatra.tasks.sweeper import sweep
from beatra.timeutil import utcnow
from tests.unit.tasks_helpers import (
    FAST,
    GEN_A,
    age,
    balance,
    finished,
    get,
    hold_messages,
    images_reply,
    ledger,
    run_step,
    submit,
    submit_direct,
    task_row,
)

APP_SETTINGS = FAST


def _past(seconds=600):
    from datetime import timedelta

    return utcnow() - timedelta(seconds=seconds)


def _kinds(app, task_id):
    return [kind for kind, _ in ledger(app, task_id)]


def test_duplicate_messages_run_the_work_once(app, client, account, upstream, monkeypatch,
                                              ledger_ok):
    upstream.post(GEN_A, json=images_reply(1))
    _, _sent = hold_messages(app, monkeypatch)
    task_id = submit(client, account)["task_id"]
    monkeypatch.undo()
    runtime = runtime_for(app)
    for _ in range(4):  # a duplicate delivery, a sweeper resend, …
        runtime.enqueue(task_id)
    task = finished(client, account, task_id)
    assert task["status"] == "succeeded"
    assert len(upstream.calls) == 1
    runtime.enqueue(task_id)  # and once more after it finished
    runtime.join(10)
    assert _kinds(app, task_id) == ["reserve", "release", "capture"]
    assert task_row(app, task_id).attempts == 1


def test_a_dead_worker_is_replaced_and_cannot_write_afterwards(app, client, account, upstream,
                                                               monkeypatch, ledger_ok):
    upstream.post(GEN_A, json=images_reply(1))
    _, sent = hold_messages(app, monkeypatch)
    task_id = submit(client, account)["task_id"]
    with app.app_context():  # a worker claims the task, then dies without a word
        dead = states.claim(task_id, lease_seconds=60)
    assert dead is not None and get(client, account, task_id)["status"] == "running"
    runtime = runtime_for(app)
    with app.app_context():
        assert sweep(runtime) == []  # its lease is still live: nothing is lost yet
    age(app, task_id, lease_until=_past(), enqueued_at=_past())
    with app.app_context():
        assert sweep(runtime) == [task_id]
        assert sweep(runtime) == []  # resent once per lease period, not on every sweep
    assert sent.sent == [(task_id, 0), (task_id, 0)]  # submission, then the sweeper
    run_step(app, task_id)
    task = get(client, account, task_id)
    assert task["status"] == "succeeded" and task_row(app, task_id).attempts == 2
    with app.app_context():  # the dead worker wakes up: its writes find nothing to change
        assert not states.succeed(dead, output={}, usage={}, charge=Decimal("0.01"))
        assert not states.fail(dead, {"code": "x", "message": "x", "retryable": False})
        with pytest.raises(states.LostClaim):
            states.checkpoint(dead)
    assert _kinds(app, task_id) == ["reserve", "release", "capture"]


def test_a_lost_queued_message_is_resent_by_the_sweeper(app, client, account, upstream,
                                                        monkeypatch, ledger_ok):
    upstream.post(GEN_A, json=images_reply(1))
    _, _sent = hold_messages(app, monkeypatch)
    task_id = submit(client, account)["task_id"]
    runtime = runtime_for(app)
    with app.app_context():
        assert sweep(runtime) == []  # just queued: give the message time to arrive
    age(app, task_id, enqueued_at=_past())
    monkeypatch.undo()  # the real broker from here on
    with app.app_context():
        assert sweep(runtime) == [task_id]
    assert finished(client, account, task_id)["status"] == "succeeded"


def test_cancel_running_task_stops_at_the_next_checkpoint(app, client, account, upstream,
                                                          ledger_ok):
    called, release = threading.Event(), threading.Event()

    def slow(request):
        called.set()
        assert release.wait(10)
        return 200, {}, __import__("json").dumps(images_reply(1))

    upstream.add_callback(responses.POST, GEN_A, callback=slow)
    task_id = submit(client, account)["task_id"]
    assert called.wait(10)
    running = get(client, account, task_id)
    assert running["status"] == "running"
    assert running["progress"]["stage"] == "generating"
    assert running["resolved_model"] == "gpt-image-2" and running["started_at"]
    resp = client.post(f"/v1/tasks/{task_id}/cancel", json={"reason": "too slow"},
                       headers=account.headers)
    assert resp.status_code == 202
    assert resp.get_json()["status"] == "running"
    assert resp.get_json()["cancel_requested_at"] is not None
    release.set()
    task = finished(client, account, task_id)
    assert task["status"] == "canceled" and task["output"] is None
    assert task["cancel_reason"] == "too slow"
    assert task["billing"]["charged_credits"] == "0"
    assert task["billing"]["refunded_credits"] == task["billing"]["reserved_credits"]
    assert balance(client, account) == Decimal("100")
    assert _kinds(app, task_id) == ["reserve", "refund"]


def test_cancel_when_the_owner_is_presumed_dead_is_immediate(app, client, account,
                                                            monkeypatch, ledger_ok):
    hold_messages(app, monkeypatch)
    task_id = submit(client, account)["task_id"]
    with app.app_context():
        dead = states.claim(task_id, lease_seconds=60)
    age(app, task_id, lease_until=_past())
    resp = client.post(f"/v1/tasks/{task_id}/cancel", headers=account.headers)
    assert (resp.status_code, resp.get_json()["status"]) == (202, "canceled")
    with app.app_context():
        assert not states.succeed(dead, output={}, usage={}, charge=Decimal("0.01"))
    assert _kinds(app, task_id) == ["reserve", "refund"]


def _poll_handler(calls, finish_after=2, wait=0.05):
    def handler(ctx):
        calls.append(ctx.attempts)
        polls = ctx.state.get("polls", 0)
        if polls < finish_after:
            return Wait(wait, state={**ctx.state, "polls": polls + 1})
        ctx.progress("done", 100)
        return Done(output={"polls": polls}, meters={"image_count": 3}, usage={"image_count": 3})
    return handler


def _submit_poll_task(app, account):
    return submit_direct(app, account, "test.poll", "5")


def test_wait_parks_without_a_worker_and_wakes_up(app, client, account, monkeypatch,
                                                  ledger_ok):
    calls: list[int] = []
    monkeypatch.setitem(HANDLERS, "test.poll", _poll_handler(calls))
    task_id = _submit_poll_task(app, account)
    task = finished(client, account, task_id)
    assert task["status"] == "succeeded" and task["output"] == {"polls": 2}
    assert calls == [1, 1, 1]  # three steps, one attempt: waking up is not a restart
    assert task["usage"]["credits"] == "3" and task["billing"]["refunded_credits"] == "0"
    assert balance(client, account) == Decimal("97")


def test_cancel_a_parked_task_is_immediate(app, client, account, monkeypatch, ledger_ok):
    monkeypatch.setitem(HANDLERS, "test.poll", _poll_handler([], wait=300))
    _, sent = hold_messages(app, monkeypatch)
    task_id = _submit_poll_task(app, account)
    run_step(app, task_id)
    assert sent.sent[-1] == (task_id, 300)  # the delayed wake-up
    parked = task_row(app, task_id)
    assert (parked.status, parked.claim_token, parked.state["polls"]) == ("running", None, 1)
    resp = client.post(f"/v1/tasks/{task_id}/cancel", headers=account.headers)
    assert (resp.status_code, resp.get_json()["status"]) == (202, "canceled")
    run_step(app, task_id)  # the wake-up arrives after all: nothing happens
    assert get(client, account, task_id)["status"] == "canceled"
    assert _kinds(app, task_id) == ["reserve", "refund"]


def test_crashing_steps_are_retried_then_fail_with_a_refund(make_app, monkeypatch):
    app = make_app(**FAST, task_max_attempts=2)
    from beatra.accounts import service as accounts

    with app.app_context():
        acct = SimpleNamespace(account_id=accounts.create_account("t", Decimal("10")).id)
    steps: list[int] = []

    def crash(ctx):
        steps.append(ctx.attempts)
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(HANDLERS, "test.poll", crash)
    task_id = _submit_poll_task(app, acct)
    runtime_for(app).join(30)
    task = task_row(app, task_id)
    assert steps == [1, 2]
    assert task.status == "failed" and task.error["code"] == "internal_error"
    assert task.error["retryable"] is True
    assert _kinds(app, task_id) == ["reserve", "refund"]
    with app.app_context():
        from beatra.billing import wallet

        assert wallet.balance(acct.account_id) == Decimal("10")
        assert wallet.audit(acct.account_id).ok


def test_a_task_restarted_too_often_gives_up(app, client, account, monkeypatch, ledger_ok):
    hold_messages(app, monkeypatch)
    task_id = submit(client, account)["task_id"]
    for _ in range(app.extensions["beatra.settings"].task_max_attempts):
        with app.app_context():
            assert states.claim(task_id, lease_seconds=60) is not None
        age(app, task_id, lease_until=_past())
    run_step(app, task_id)
    task = get(client, account, task_id)
    assert task["status"] == "failed" and task["error"]["code"] == "internal_error"
    assert "giving up" in task["error"]["message"]
    assert balance(client, account) == Decimal("100")


def test_heartbeats_keep_a_live_claim(app, client, account, monkeypatch):
    hold_messages(app, monkeypatch)
    task_id = submit(client, account)["task_id"]
    with app.app_context():
        claim = states.claim(task_id, lease_seconds=1)
        age(app, task_id, lease_until=_past(5))
        assert states.renew([claim.token, "stale-token"], lease_seconds=60) == 1
        assert states.claim(task_id, lease_seconds=60) is None  # owned and alive
    assert task_row(app, task_id).lease_until.replace(tzinfo=None) > utcnow().replace(
        tzinfo=None)


def test_a_cancel_landing_after_the_last_checkpoint_still_wins(app, client, account,
                                                               monkeypatch, ledger_ok):
    hold_messages(app, monkeypatch)
    task_id = submit(client, account)["task_id"]
    with app.app_context():
        claim = states.claim(task_id, lease_seconds=60)
        states.checkpoint(claim)  # the owner's last look: nothing asked yet
        assert states.request_cancel(account.account_id, task_id, "late")
        assert not states.succeed(claim, output={"images": []}, usage={},
                                  charge=Decimal("0.01"))
        with pytest.raises(states.CancelRequested):
            states.checkpoint(claim)
        assert states.cancel_owned(claim)
    task = get(client, account, task_id)
    assert (task["status"], task["cancel_reason"], task["output"]) == ("canceled", "late", None)
    assert _kinds(app, task_id) == ["reserve", "refund"]
