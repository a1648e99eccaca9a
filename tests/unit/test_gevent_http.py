"""The gevent upstream transport (beatra.providers.gevent_http) against raw loopback servers:
the same requests.Response and requests exceptions as the requests path, lines of a stream
as they arrive, connection reuse only after a whole body, and aborts that end a blocked read.

These tests call the transport directly: pytest does not run under gevent, so
beatra.providers.http picks requests here (that choice is tested at the end)."""

from __future__ import annotations

import socket
import sys
import threading
import time
import types

import gevent
import pytest
import requests

from beatra.chat.keepalive import abort_socket
from beatra.providers import gevent_http, http
from beatra.providers.openai_chat import sse_data
from beatra.providers.openai_errors import transport_problem

TIMEOUT = (1.0, 1.0)


class RawServer:
    """Accepts connections in a thread and hands each to `handler(conn, server)`."""

    def __init__(self, handler, *, backlog: int = 16) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.accepted = 0
        self.requests = 0
        self.release = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(buf) < length:
                    buf += conn.recv(65536)
                buf = buf[length:]
                self.requests += 1
                if self.handler(conn, self) is False:
                    return

    def close(self) -> None:
        self.release.set()
        self.sock.close()


def _json_reply(conn: socket.socket, _server: RawServer) -> None:
    body = b'{"choices": [], "ok": true}'
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Up: 1\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@pytest.fixture
def serve():
    servers: list[RawServer] = []

    def make(handler, **kw) -> RawServer:
        servers.append(RawServer(handler, **kw))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def _post(url: str, *, stream: bool = False, timeout=TIMEOUT) -> requests.Response:
    return gevent_http.post(url, b'{"model": "m"}', {"Content-Type": "application/json"},
                            timeout=timeout, stream=stream, pool_size=4)


def test_a_json_answer_is_a_requests_response_and_the_connection_is_reused(serve):
    server = serve(_json_reply)
    for _ in range(3):
        resp = _post(server.url)
        assert resp.status_code == 200 and resp.headers["x-up"] == "1"
        assert resp.json() == {"choices": [], "ok": True}
        resp.close()
    assert server.requests == 3 and server.accepted == 1


def test_stream_lines_arrive_before_the_stream_ends(serve):
    first_read = threading.Event()

    def sse(conn, server):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + _chunk(b'data: {"n": 1}\n\n'))
        first_read.wait(5)  # the rest only after the client saw the first event
        conn.sendall(_chunk(b'data: {"n": 2}\n\ndata: [DONE]\n\n') + b"0\r\n\r\n")

    server = serve(sse)
    resp = _post(server.url, stream=True)
    events = sse_data(resp)
    assert next(events) == b'{"n": 1}'
    first_read.set()
    assert list(events) == [b'{"n": 2}']
    resp.close()
    assert _post(server.url, stream=True).status_code == 200
    assert server.accepted == 1  # read to its end: the connection went back to the pool


def test_a_half_read_stream_is_not_reused(serve):
    def endless(conn, server):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + _chunk(b"data: 1\n\n"))
        server.release.wait(5)
        return False

    server = serve(endless)
    resp = _post(server.url, stream=True)
    assert next(sse_data(resp)) == b"1"
    resp.close()
    _post(server.url, stream=True).close()
    assert server.accepted == 2


def test_an_error_status_body_is_readable_when_streaming(serve):
    def failing(conn, server):
        body = b'{"error": {"message": "overloaded"}}'
        conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)

    server = serve(failing)
    resp = _post(server.url, stream=True)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "7"
    assert resp.json()["error"]["message"] == "overloaded"


def test_connection_refused_is_unreachable():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(requests.ConnectionError) as caught:
        _post(f"http://127.0.0.1:{port}/v1/chat/completions")
    assert transport_problem(caught.value, "up") == (True, "cannot reach upstream up")


def test_connect_timeout_is_unreachable_and_a_silent_upstream_times_out_reading(serve):
    # A full accept queue: the kernel drops further SYNs, so connecting hangs.
    jammed = socket.socket()
    jammed.bind(("127.0.0.1", 0))
    jammed.listen(0)
    port = jammed.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    with pytest.raises(requests.ConnectTimeout) as caught:
        _post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=(0.2, 5))
    assert transport_problem(caught.value, "up")[0] is True
    for sock in [jammed, *fillers]:
        sock.close()

    silent = serve(lambda conn, server: server.release.wait(5))
    with pytest.raises(requests.ReadTimeout) as caught:
        _post(silent.url, timeout=(1, 0.2))
    assert transport_problem(caught.value, "up") == (False, "upstream up timed out")


def test_a_body_cut_short_raises_a_connection_error(serve):
    def short(conn, server):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"choices\"")
        return False

    server = serve(short)
    with pytest.raises(requests.ConnectionError):
        _post(server.url)

    def cut_stream(conn, server):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + _chunk(b"data: 1\n\n"))
        return False

    server = serve(cut_stream)
    events = sse_data(_post(server.url, stream=True))
    assert next(events) == b"1"
    with pytest.raises(requests.RequestException):
        next(events)


def test_abort_ends_a_blocked_read_at_once(serve):
    def silent_stream(conn, server):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        server.release.wait(10)
        return False

    server = serve(silent_stream)
    resp = _post(server.url, stream=True, timeout=(1, 10))
    reader = gevent.spawn(lambda: list(sse_data(resp)))
    gevent.sleep(0.1)
    started = time.monotonic()
    abort_socket(resp)()
    with pytest.raises(requests.RequestException):
        reader.get(timeout=2)
    assert time.monotonic() - started < 1
    resp.close()


def test_http_post_uses_the_gevent_transport_only_under_gevent(monkeypatch):
    calls = []
    monkeypatch.setattr(gevent_http, "post", lambda *a, **kw: calls.append(kw) or "gevent")
    patched = types.SimpleNamespace(is_module_patched=lambda name: name == "socket")
    monkeypatch.setitem(sys.modules, "gevent.monkey", patched)
    assert http.post("http://127.0.0.1:9/x", b"{}", {}, timeout=TIMEOUT, stream=False) \
        == "gevent"
    assert calls[0]["stream"] is False
    monkeypatch.setitem(sys.modules, "gevent.monkey",
                        types.SimpleNamespace(is_module_patched=lambda name: False))
    with pytest.raises(requests.ConnectionError):  # requests' own path: nothing listens on 9
        http.post("http://127.0.0.1:9/x", b"{}", {}, timeout=TIMEOUT, stream=False)
    assert len(calls) == 1
