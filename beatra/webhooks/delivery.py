"""One delivery attempt: claim it, POST the signed TaskEnvelope (SSRF-vetted, no redirects),
record the outcome, and schedule the next attempt as a delayed message (never a sleep).

2xx = delivered. 410 = stop and disable the endpoint. Anything else (another status, a refused
or timed-out connection, a redirect, an address the SSRF rules now refuse) = retry after the
next delay of the schedule, with ±20 % jitter; after the last attempt the delivery is failed.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

from beatra import jsonsafe
from beatra.extensions import db
from beatra.net import NetError, safe_request
from beatra.tasks.models import Task
from beatra.tasks.runtime import TaskRuntime
from beatra.tasks.serialize import envelope
from beatra.timeutil import utcnow
from beatra.webhooks import outbox, signing
from beatra.webhooks.endpoints import disable
from beatra.webhooks.models import WebhookEndpoint

log = logging.getLogger(__name__)

ATTEMPT_LEASE_SECONDS = 60.0  # longer than one attempt's deadline
TIMEOUT = (5.0, 10.0)
DEADLINE_SECONDS = 15.0
RESPONSE_BYTES = 4096  # enough of the receiver's answer for last_error
JITTER = 0.2


def next_delay(schedule: tuple[float, ...], attempts_made: int) -> float | None:
    """Seconds until the next attempt after `attempts_made` attempts; None when none is left."""
    if attempts_made < 1 or attempts_made > len(schedule):
        return None
    base = schedule[attempts_made - 1]
    return max(0.0, base * random.uniform(1 - JITTER, 1 + JITTER))


def deliver(task_id: str, runtime: TaskRuntime) -> str | None:
    """Run the attempt that is due for `task_id`; returns the outcome status, or None when
    there was nothing to do (a duplicate or early message, or the delivery is final)."""
    attempt = outbox.claim(task_id, lease_seconds=ATTEMPT_LEASE_SECONDS)
    if attempt is None:
        return None
    endpoint = db.session.get(WebhookEndpoint, attempt.account_id)
    task = db.session.get(Task, task_id)
    if endpoint is None or endpoint.status != "active" or task is None:
        db.session.commit()
        reason = ("the webhook endpoint was removed" if endpoint is None
                  else f"the webhook endpoint is disabled ({endpoint.disabled_reason})"
                  if endpoint.status != "active" else "the task no longer exists")
        outbox.finish(attempt, url=None, status="failed", status_code=None, error=reason,
                      next_attempt_at=None, counted=False)
        return "failed"
    url, secret = endpoint.url, endpoint.secret
    body = jsonsafe.dumps(envelope(task))  # stored text never blocks a delivery
    db.session.commit()  # no transaction held across the network call

    timestamp = int(time.time())
    headers = signing.headers(secret, attempt.event_id, timestamp, body)
    status_code: int | None = None
    try:
        with safe_request("POST", url, data=body, headers=headers, max_bytes=RESPONSE_BYTES,
                          timeout=TIMEOUT, deadline_seconds=DEADLINE_SECONDS) as result:
            status_code = result.status
            answer = result.read()[:400].decode("utf-8", "replace")
        error = None if 200 <= status_code < 300 else f"HTTP {status_code}: {answer}".strip()
        if status_code in (301, 302, 303, 307, 308):
            error = f"HTTP {status_code}: redirects are not followed"
    except NetError as exc:
        error = str(exc)

    fields = {"task_id": task_id, "attempt": attempt.attempt_count + 1, "status": status_code}
    if error is None:
        outbox.finish(attempt, url=url, status="delivered", status_code=status_code, error=None,
                      next_attempt_at=None)
        log.info("webhook delivered", extra={"fields": fields})
        return "delivered"
    if status_code == 410:
        disable(attempt.account_id, url, "the receiver answered 410 Gone")
        outbox.finish(attempt, url=url, status="failed", status_code=status_code, error=error,
                      next_attempt_at=None)
        log.warning("webhook endpoint gone; disabled", extra={"fields": fields})
        return "failed"
    delay = next_delay(runtime.settings.webhook_retry_schedule, attempt.attempt_count + 1)
    if delay is None:
        outbox.finish(attempt, url=url, status="failed", status_code=status_code, error=error,
                      next_attempt_at=None)
        log.warning("webhook delivery failed for good", extra={"fields": fields})
        return "failed"
    due = utcnow() + timedelta(seconds=delay)
    if outbox.finish(attempt, url=url, status="retrying", status_code=status_code, error=error,
                     next_attempt_at=due):
        runtime.send_webhook(task_id, delay_seconds=delay)
    log.info("webhook attempt failed; will retry",
             extra={"fields": {**fields, "retry_in_s": round(delay, 1)}})
    return "retrying"


def resend_overdue(runtime: TaskRuntime) -> list[str]:
    """The sweeper's part: re-send deliveries whose attempt is overdue and unowned (a lost
    message). Returns the task ids whose delivery was re-sent."""
    grace = runtime.settings.task_requeue_seconds
    resent = []
    for task_id in outbox.overdue(grace_seconds=grace):
        if outbox.mark_requeued(task_id, grace_seconds=grace):
            runtime.send_webhook(task_id)
            resent.append(task_id)
    if resent:
        log.warning("re-sent lost webhook deliveries",
                    extra={"fields": {"count": len(resent), "task_ids": resent[:20]}})
    return resent
