"""Route fail-over for task handlers: beatra.catalog.failover, ending the task on failure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from beatra.catalog.failover import NoRouteAdmitted, first_answer
from beatra.catalog.model import Route
from beatra.providers.failures import ProviderFailure
from beatra.tasks.context import TaskContext
from beatra.tasks.handlers import TaskFailure

T = TypeVar("T")


def first_route(ctx: TaskContext, routes: Sequence[Route], attempt: Callable[[Route], T]
                ) -> tuple[Route, T]:
    """(route, answer) of the first route that answers; the last ProviderFailure when none
    does. The task's cancel checkpoint runs between attempts."""
    try:
        return first_answer(routes, attempt, account_id=ctx.account_id,
                            failures=(ProviderFailure,), between=ctx.checkpoint)
    except NoRouteAdmitted:
        raise TaskFailure("model_unavailable", "Another request is probing this model's "
                          "upstream; try again shortly.", retryable=True) from None


def first_route_answer(ctx: TaskContext, routes: Sequence[Route], attempt: Callable[[Route], T],
                       *, public_code: Callable[[ProviderFailure], str] = lambda f: f.code
                       ) -> T:
    """The first route's answer; a TaskFailure (public code by `public_code`) when none
    answers."""
    try:
        _, result = first_route(ctx, routes, attempt)
    except ProviderFailure as failure:
        raise TaskFailure(public_code(failure), failure.message,
                          retryable=failure.retryable) from None
    return result
