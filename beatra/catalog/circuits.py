"""A per-process circuit breaker per route (provider + upstream model).

After FAILURE_THRESHOLD consecutive retryable failures a route is skipped for OPEN_SECONDS;
then one request may try it again (half-open): success closes it, failure re-opens it.
Per process on purpose: no shared store on the hot path, and each worker learns quickly.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from beatra.catalog.model import Route

FAILURE_THRESHOLD = 3
OPEN_SECONDS = 30.0


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0


class CircuitBreaker:
    def __init__(self, threshold: int = FAILURE_THRESHOLD, open_seconds: float = OPEN_SECONDS):
        self.threshold = threshold
        self.open_seconds = open_seconds
        self._states: dict[tuple[str, str], _State] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(route: Route) -> tuple[str, str]:
        return route.provider.name, route.upstream_model

    def is_open(self, route: Route) -> bool:
        state = self._states.get(self._key(route))
        return state is not None and state.open_until > time.monotonic()

    def success(self, route: Route) -> None:
        if self._key(route) in self._states:
            with self._lock:
                self._states.pop(self._key(route), None)

    def failure(self, route: Route) -> None:
        with self._lock:
            state = self._states.setdefault(self._key(route), _State())
            state.failures += 1
            if state.failures >= self.threshold:
                state.open_until = time.monotonic() + self.open_seconds

    def reset(self) -> None:
        with self._lock:
            self._states.clear()


breaker = CircuitBreaker()
