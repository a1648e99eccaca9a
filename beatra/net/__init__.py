"""Server-side networking under the SSRF rules: `check_url`, `safe_get`, `safe_request`,
`pinned_session`. BEATRA_NET_ALLOWLIST is the one switch for every server-side fetch."""

from beatra.net.addresses import NetPolicy, is_public
from beatra.net.fetch import (
    FetchError,
    FetchResult,
    NetError,
    Target,
    UnsafeUrl,
    check_url,
    current_policy,
    pinned_session,
    safe_get,
    safe_request,
)

__all__ = [
    "FetchError", "FetchResult", "NetError", "NetPolicy", "Target", "UnsafeUrl", "check_url",
    "current_policy", "is_public", "pinned_session", "safe_get", "safe_request",
]
