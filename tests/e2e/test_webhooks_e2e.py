"""Webhooks and rate limits end to end: gunicorn (gevent) + the sandbox upstream.

A task's callback reaches a plain-HTTP receiver on loopback (allowlisted) with a signature the
`standardwebhooks` package verifies; with Redis, one key's requests-per-minute limit holds
across two gunicorn workers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from tests.e2e.procs import TaskStack, children
from tests.unit.test_webhooks import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([503])  # the first attempt fails; the retry succeeds
    yield r
    r.close()


def test_callback_delivered_and_verified(tmp_path, receiver):
    stack = TaskStack(tmp_path, env={"BEATRA_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2,0.2"}).start()
    try:
        account = stack.new_account()
        out = stack.cli("webhooks", "set", "--account", account.account_id,
                        "--url", receiver.url, "--json")
        secret = json.loads(out.stdout)["secret"]
        task = account.submit("/v1/images/generations",
                              {"model": "gpt-image-2", "prompt": "a red fox"})
        done = account.wait(task["task_id"], until=lambda t: (
            (t.get("callback") or {}).get("status") in ("delivered", "failed")))
        assert done["callback"]["status"] == "delivered", done["callback"]
        assert done["callback"]["attempt_count"] == 2
        headers, body = receiver.requests[-1]
        payload = Webhook(secret).verify(body, headers)
        assert payload["task_id"] == task["task_id"] and payload["status"] == done["status"]
        assert stack.audit_ok()
    finally:
        stack.close()


def test_rate_limit_is_shared_between_two_gunicorn_workers(tmp_path, redis_url):
    stack = TaskStack(tmp_path, redis_url=redis_url)
    stack.migrate()
    stack.start_sandbox()
    stack.start_gateway(workers=2)
    try:
        assert len(children(stack.procs["gateway"].pid)) == 2
        account_id, _ = stack.create_account()
        created = json.loads(stack.cli("keys", "create", "--account", account_id,
                                       "--json").stdout)
        stack.cli("keys", "limits", created["key_id"], "--rpm", "6")
        headers = {"Authorization": f"Bearer {created['api_key']}", "Connection": "close"}
        seen = []
        for _ in range(16):  # a fresh connection each time: either worker may answer
            resp = requests.get(f"{stack.url}/v1/models", headers=headers, timeout=30)
            assert resp.headers["X-RateLimit-Limit"] == "6"
            seen.append((resp.status_code, int(resp.headers["X-RateLimit-Reset"])))
        # The minute may roll over during the loop: its seconds-to-reset then jump up, and the
        # requests after it count in a fresh window. Each window lets exactly 6 through, the
        # first 6 of it; per-process counting would let up to 12 through (6 per worker).
        windows: list[list[int]] = [[]]
        for i, (status, reset) in enumerate(seen):
            if i and reset > seen[i - 1][1]:
                windows.append([])
            windows[-1].append(status)
        for statuses in windows:
            allowed = min(6, len(statuses))
            assert statuses == [200] * allowed + [429] * (len(statuses) - allowed), seen
    finally:
        stack.close()
