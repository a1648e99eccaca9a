"""Fetching caller-supplied media URLs (MiniMax cover inputs, Suno uploadUrl).

Kept in its own module so tests can monkeypatch ``fetch_bytes`` without a network.
"""

from __future__ import annotations

import requests

MAX_BYTES = 50 * 1024 * 1024  # the providers' documented reference-audio ceiling
TIMEOUT_S = 10


def fetch_bytes(url: str) -> tuple[bytes, str] | None:
    """(body, content type) of a successful GET, or None on any failure."""
    try:
        with requests.get(url, timeout=TIMEOUT_S, stream=True) as resp:
            if resp.status_code != 200:
                return None
            body = bytearray()
            for block in resp.iter_content(64 * 1024):
                body += block
                if len(body) > MAX_BYTES:
                    return None
            return bytes(body), resp.headers.get("Content-Type", "")
    except (requests.RequestException, ValueError):
        return None
