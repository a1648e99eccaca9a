"""Downloading an upstream's output file (MiniMax URL output, Suno clips): the URL comes from
the configured upstream, not from a caller, so no SSRF address rules apply; size and total time
are capped all the same, and nothing is kept past the cap."""

from __future__ import annotations

import time

import requests

from beatra.providers.http import upstream_session

MAX_BYTES = 200 * 1024 * 1024
DEADLINE_SECONDS = 300.0
_CHUNK = 256 * 1024


class DownloadError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


def download(url: str, *, max_bytes: int = MAX_BYTES, deadline_seconds: float = DEADLINE_SECONDS,
             read_timeout: float = 60.0) -> bytes:
    """The body of a 200 answer to GET `url`. Raises DownloadError (retryable unless the file
    is too large)."""
    started = time.monotonic()
    try:
        with upstream_session().get(url, stream=True, timeout=(5.0, read_timeout)) as resp:
            if resp.status_code != 200:
                raise DownloadError(f"the output file answered HTTP {resp.status_code}",
                                    retryable=True)
            data = bytearray()
            for chunk in resp.iter_content(_CHUNK):
                data += chunk
                if len(data) > max_bytes:
                    raise DownloadError(f"the output file is larger than {max_bytes} bytes",
                                        retryable=False)
                if time.monotonic() - started > deadline_seconds:
                    raise DownloadError("downloading the output file took more than "
                                        f"{deadline_seconds:g}s", retryable=True)
            return bytes(data)
    except requests.RequestException as exc:
        raise DownloadError(f"could not download the output file ({type(exc).__name__})",
                            retryable=True) from None
