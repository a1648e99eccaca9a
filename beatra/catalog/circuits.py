"""A per-process circuit breaker per route (provider + upstream model), safe between tenants.

A route opens only when at least THRESHOLD retryable failures within WINDOW_SECONDS come from
at least MIN_ACCOUNTS different accounts: one caller whose requests make an upstream fail (a
bad prompt, a directive, an SDK retrying) can never take a model offline for everyone else;
its own requests still fail over to the next route at once. An open route is skipped for
OPEN_SECONDS; then exactly one request at a time may probe it (half-open): success closes it,
failure re-opens it. Opening and closing are logged once each.

Per process on purpose: no shared store on the hot path, and each worker learns quickly.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from beatra import metrics
from beatra.catalog.model import Route

log = logging.getLogger(__name__)

FAILURE_THRESHOLD = 3
MIN_ACCOUNTS = 2
WINDOW_SECONDS = 60.0
OPEN_SECONDS = 30.0


@dataclass
class _State:
    failures: deque[tuple[float, str]] = field(default_factory=deque)  # (time, account)
    open_until: float = 0.0  # > 0 while open (half-open once it has passed)
    probe_since: float = 0.0  # a probe is in flight since then (0: none)


class CircuitBreaker:
    def __init__(self, threshold: int = FAILURE_THRESHOLD, open_seconds: float = OPEN_SECONDS,
                 *, min_accounts: int = MIN_ACCOUNTS, window_seconds: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.open_seconds = open_seconds
        self.min_accounts = min_accounts
        self.window_seconds = window_seconds
        self._clock = clock
        self._states: dict[tuple[str, str], _State] = {}
        self._lock = threading.Lock()

    def _now(self) -> float:
        return self._clock()

    @staticmethod
    def _key(route: Route) -> tuple[str, str]:
        return route.provider.name, route.upstream_model

    def is_open(self, route: Route) -> bool:
        """Open and not yet due for a probe (a route in this state is not offered)."""
        state = self._states.get(self._key(route))
        return state is not None and state.open_until > self._now()

    def retry_after(self, route: Route) -> int | None:
        """Whole seconds until an open route may be probed; None when it is not open."""
        state = self._states.get(self._key(route))
        if state is None or state.open_until <= 0:
            return None
        return max(1, math.ceil(state.open_until - self._now()))

    def admit(self, route: Route) -> bool:
        """May a request try this route now? Always when closed; when half-open, only the one
        request that becomes the probe (a stale probe, older than OPEN_SECONDS, is replaced)."""
        key = self._key(route)
        state = self._states.get(key)
        if state is None or state.open_until <= 0:
            return True
        now = self._now()
        with self._lock:
            if state.open_until > now:
                return False
            if state.probe_since and now - state.probe_since < self.open_seconds:
                return False
            state.probe_since = now
            return True

    def success(self, route: Route) -> None:
        key = self._key(route)
        if key not in self._states:
            return
        with self._lock:
            state = self._states.pop(key, None)
        if state is not None and state.open_until > 0:
            metrics.set_circuit(route.upstream_model, route.provider.name, False)
            log.warning("circuit closed", extra={"fields": {
                "provider": route.provider.name, "upstream_model": route.upstream_model}})

    def failure(self, route: Route, account_id: str) -> None:
        key = self._key(route)
        now = self._now()
        opened = False
        with self._lock:
            state = self._states.setdefault(key, _State())
            if state.open_until > 0:  # a failed probe: stay open for another period
                state.open_until = now + self.open_seconds
                state.probe_since = 0.0
                return
            state.failures.append((now, account_id))
            while state.failures and now - state.failures[0][0] > self.window_seconds:
                state.failures.popleft()
            accounts = {who for _, who in state.failures}
            if len(state.failures) >= self.threshold and len(accounts) >= self.min_accounts:
                state.open_until = now + self.open_seconds
                state.failures.clear()
                opened = True
        if opened:
            metrics.set_circuit(route.upstream_model, route.provider.name, True)
            log.warning("circuit opened", extra={"fields": {
                "provider": route.provider.name, "upstream_model": route.upstream_model,
                "accounts": len(accounts), "open_seconds": self.open_seconds}})

    def reset(self) -> None:
        with self._lock:
            self._states.clear()


breaker = CircuitBreaker()
