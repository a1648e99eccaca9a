"""The one failure type every provider adapter raises (chat, images, MiniMax, Suno).

Classified once, where the provider's answer is understood, in the gateway's own terms:
`code` is the public error code it becomes (`invalid_request`, `model_unavailable`,
`upstream_error`, `content_policy_violation`, `rate_limited`, …); `try_next` says another route
may do better (beatra.catalog.failover counts it against the route and moves on); `retryable`
says the same request to beatra may succeed later.
"""

from __future__ import annotations

from dataclasses import dataclass

# Public code → HTTP status for synchronous calls (tasks carry the code in their envelope).
HTTP_STATUS = {"invalid_request": 422, "content_policy_violation": 422,
               "model_unavailable": 503, "rate_limited": 503}


@dataclass
class ProviderFailure(Exception):
    code: str
    message: str
    status: int | None = None  # the upstream's HTTP status
    param: str | None = None  # JSON Pointer into the client's request, when the upstream said
    try_next: bool | None = None  # default: the same as `retryable`
    retryable: bool = True
    retry_after: str | None = None  # the upstream's Retry-After
    upstream_code: int | None = None  # the provider's own code in its body

    def __post_init__(self) -> None:
        if self.try_next is None:
            self.try_next = self.retryable

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 502)
