"""One step of a task: claim it, run its handler, and record the outcome exactly once.

Called by the Dramatiq actor with nothing but a task id. Every way out is a conditional
transition (beatra.tasks.states), so running the same step twice — a duplicate message, a
retry, the sweeper after a crash — can neither charge nor refund twice. A worker that dies after
the upstream answered but before the task was finished leaves a running row whose lease
expires; the sweeper re-enqueues it and the next claim runs the step again (the upstream may be
called again; the caller is charged once).
"""

from __future__ import annotations

import logging

from dramatiq.middleware import Interrupt

from beatra.billing.money import fmt
from beatra.tasks import states
from beatra.tasks.context import TaskContext
from beatra.tasks.handlers import Done, TaskFailure, Wait
from beatra.tasks.pricing import PriceTable, price
from beatra.tasks.runtime import TaskRuntime

log = logging.getLogger(__name__)


def execute(task_id: str, runtime: TaskRuntime) -> None:
    settings = runtime.settings
    claim = states.claim(task_id, lease_seconds=settings.task_lease_seconds)
    if claim is None:
        return  # finished, canceled, or owned by a live worker: this message is a duplicate
    fields = {"task_id": task_id, "attempt": claim.attempts, "capability": claim.capability}
    if claim.attempts > settings.task_max_attempts:
        log.error("task gave up", extra={"fields": fields})
        runtime.announce(states.fail(claim, {
            "code": "internal_error", "retryable": True,
            "message": f"The task was started {claim.attempts - 1} times without finishing; "
                       "giving up."}))
        return
    ctx = TaskContext.of(claim, lease_seconds=settings.task_lease_seconds)
    runtime.heartbeats.add(ctx.token)
    try:
        ctx.checkpoint()
        handler = runtime.handlers.get(ctx.capability)
        if handler is None:
            raise TaskFailure("internal_error", f"No handler for capability {ctx.capability!r}.")
        outcome = handler(ctx)
        if isinstance(outcome, Wait):
            states.park(ctx, outcome.seconds, lease_seconds=settings.task_lease_seconds,
                        state=outcome.state)
            runtime.enqueue(task_id, delay_seconds=outcome.seconds)
            return
        ctx.checkpoint()
        runtime.announce(_finish(ctx, outcome))
        log.info("task succeeded", extra={"fields": fields})
    except states.CancelRequested:
        runtime.announce(states.cancel_owned(ctx))
        log.info("task canceled", extra={"fields": fields})
    except states.LostClaim:
        log.warning("task claim lost; another worker or the caller ended it",
                    extra={"fields": fields})
    except TaskFailure as failure:
        runtime.announce(states.fail(ctx, failure.as_error()))
        log.info("task failed", extra={"fields": {**fields, "code": failure.code}})
    except Interrupt:
        states.release(ctx)  # time limit or shutdown: let the retry claim it at once
        raise
    except Exception:
        if ctx.attempts >= settings.task_max_attempts:
            log.exception("task crashed on its last attempt", extra={"fields": fields})
            runtime.announce(states.fail(ctx, {
                "code": "internal_error", "retryable": True,
                "message": "The task failed with an internal error."}))
            return
        log.exception("task step crashed; will retry", extra={"fields": fields})
        states.release(ctx)
        raise  # Dramatiq retries with backoff; the attempt counter bounds the loop
    finally:
        runtime.heartbeats.discard(ctx.token)


def _finish(ctx: TaskContext, done: Done) -> states.Ended:
    table = PriceTable.from_state(ctx.state["pricing"])
    lines, total = price(done.meters, table)
    charge = min(total, ctx.reserved)
    if total > ctx.reserved:
        ctx.warn("charge_capped", f"Usage came to {fmt(total)} credits, more than the "
               f"{fmt(ctx.reserved)} reserved; you were charged the reserved amount.")
    usage = {**done.usage, "lines": lines, "credits": fmt(charge),
             "credits_usd_reference": fmt(table.usd(charge))}
    ended = states.succeed(ctx, output=done.output, usage=usage, charge=charge)
    if ended is None:
        ctx.checkpoint()  # raises CancelRequested (canceled meanwhile) or LostClaim
        raise states.LostClaim(ctx.task_id)
    return ended
