"""The upstream POST on geventhttpclient, for processes that run under gevent.

gunicorn's gevent worker relays every chat call through here: geventhttpclient parses with a
C parser on gevent's own sockets, about 70 µs of CPU a call against ~390 µs for
requests/urllib3/http.client (bench/, measured against the fast fake upstream). Its answer is
handed up as a `requests.Response`, with its errors as requests' exceptions, so everything
above the transport (status classification, SSE parsing, the read-ahead's abort) is the same
code whichever client carried the call. Elsewhere (the CLI, tests without gevent, task
workers) beatra.providers.http uses requests itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPParseError, HTTPSocketPoolResponse
from requests.structures import CaseInsensitiveDict

_clients: dict[tuple[str, str, int, float, float], HTTPClient] = {}
_lock = threading.Lock()
_pid: int | None = None


def _client(scheme: str, host: str, port: int, timeout: tuple[float, float],
            pool_size: int) -> HTTPClient:
    global _pid
    key = (scheme, host, port, timeout[0], timeout[1])
    client = _clients.get(key)
    if client is None or _pid != os.getpid():  # never share sockets across a fork
        with _lock:
            if _pid != os.getpid():
                _clients.clear()
                _pid = os.getpid()
            client = _clients.get(key)
            if client is None:
                client = HTTPClient(host, port, ssl=scheme == "https", concurrency=pool_size,
                                    connection_timeout=timeout[0], network_timeout=timeout[1])
                _mark_connect_failures(client)
                _clients[key] = client
    return client


class _ConnectFailed(OSError):
    """No connection was made (refused, unresolvable, connect timeout, TLS handshake)."""


def _mark_connect_failures(client: HTTPClient) -> None:
    """Tell a failure to connect from one after connecting: failing over to another route
    depends on it (beatra.providers.openai_errors.transport_problem), and geventhttpclient
    raises the same socket errors for both. Its pool makes new connections in one method."""
    pool = client._connection_pool
    create = pool._create_socket

    def create_socket() -> Any:
        try:
            return create()
        except OSError as exc:
            raise _ConnectFailed(str(exc)) from exc

    pool._create_socket = create_socket  # type: ignore[method-assign]


class _Connection:
    """What beatra.chat.keepalive.abort_socket looks for: `raw.connection.sock`."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock


class _StreamedBody:
    """A streamed body behind `requests.Response.raw`: `stream()` yields lines as they arrive
    (SSE is line-framed), `close()` gives the socket back to the pool only when the body was
    read to its end (geventhttpclient closes it otherwise)."""

    def __init__(self, resp: HTTPSocketPoolResponse) -> None:
        self._resp = resp
        self.connection = _Connection(resp._sock)

    def stream(self, _chunk_size: int | None = None, decode_content: bool = True
               ) -> Iterator[bytes]:
        readline = self._resp.readline
        try:
            while True:
                line = readline(b"\n")
                if not line:  # the end; readline keeps back a last line without "\n"
                    rest = self._resp.read()
                    if rest:
                        yield rest
                    return
                yield line
        except (OSError, HTTPParseError) as exc:
            raise _broken(exc) from None

    def read(self, _amt: int | None = None) -> bytes:
        return b"".join(self.stream())

    def close(self) -> None:
        self._resp.release()
        self.connection.sock = None


def _broken(exc: BaseException) -> requests.RequestException:
    if isinstance(exc, TimeoutError):
        return requests.ReadTimeout(f"read timed out: {exc}")
    return requests.ConnectionError(f"connection broke: {exc}")


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: tuple[float, float],
         stream: bool, pool_size: int) -> requests.Response:
    parts = urlsplit(url)
    scheme = parts.scheme
    port = parts.port or (443 if scheme == "https" else 80)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    client = _client(scheme, parts.hostname or "", port, timeout, pool_size)
    try:
        resp = client.request("POST", target, body=body, headers=headers)
    except _ConnectFailed as exc:
        if isinstance(exc.__cause__, TimeoutError):
            raise requests.ConnectTimeout(f"connect timed out: {exc}") from None
        raise requests.ConnectionError(f"cannot connect: {exc}") from None
    except (OSError, HTTPParseError) as exc:  # sent, then no (whole) response head
        raise _broken(exc) from None
    answer = requests.Response()
    answer.status_code = resp.status_code
    answer.reason = getattr(resp, "status_message", "") or ""
    answer.headers = CaseInsensitiveDict(resp.items())
    answer.url = url
    if stream:
        answer.raw = _StreamedBody(resp)
        return answer
    try:
        answer._content = resp.read()
    except (OSError, HTTPParseError) as exc:
        raise _broken(exc) from None
    finally:
        resp.release()
    answer._content_consumed = True  # type: ignore[attr-defined]  # close() skips raw
    return answer
