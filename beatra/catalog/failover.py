"""The one route fail-over loop, shared by chat, images and music.

Routes are tried in catalog order until one answers. A failure that another route may do
better on (`try_next`) counts against that route's circuit (attributed to the calling account,
see beatra.catalog.circuits) and moves on; any other failure is the request's own and is
raised at once. A half-open route is tried only by the request `breaker.admit` picks as probe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from beatra import metrics
from beatra.catalog.circuits import breaker
from beatra.catalog.model import Route

log = logging.getLogger(__name__)
T = TypeVar("T")


class RouteFailure(Protocol):
    """What every provider failure says about itself."""

    @property
    def try_next(self) -> bool: ...


class NoRouteAdmitted(Exception):
    """Every route was skipped (open circuits, another request probing)."""


def first_answer(routes: Iterable[Route], attempt: Callable[[Route], T], *, account_id: str,
                 failures: tuple[type[Exception], ...],
                 between: Callable[[], None] | None = None) -> tuple[Route, T]:
    """(route, result) of the first route that answers. Raises the last failure (one of
    `failures`) when none does, or NoRouteAdmitted when no route could be tried at all.
    `between` runs before each next attempt (a task's cancel checkpoint)."""
    last: Exception | None = None
    for route in routes:
        if not breaker.admit(route):
            continue
        if last is not None and between is not None:
            between()
        started = time.perf_counter()
        try:
            result = attempt(route)
        except failures as failure:
            metrics.record_upstream(route.provider.name, route.upstream_model,
                                    str(getattr(failure, "code", "error")),
                                    time.perf_counter() - started)
            if not getattr(failure, "try_next", False):
                raise
            breaker.failure(route, account_id)
            log.warning("upstream route failed", extra={"fields": {
                "provider": route.provider.name, "upstream_model": route.upstream_model,
                "error": str(failure)}})
            last = failure
            continue
        metrics.record_upstream(route.provider.name, route.upstream_model, "ok",
                                time.perf_counter() - started)
        breaker.success(route)
        return route, result
    if last is None:
        raise NoRouteAdmitted()
    raise last
