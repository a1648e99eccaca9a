"""beatra.gunicorn_writes: the head leaves with the first body bytes, in one write, and the
bytes on the wire are exactly what gunicorn itself would have sent."""

from __future__ import annotations

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi

from beatra import gunicorn_writes


class Socket:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


class Request:
    version = (1, 1)
    method = "GET"
    headers: list[tuple[str, str]] = []

    def __init__(self, method: str = "GET") -> None:
        self.method = method

    def should_close(self) -> bool:
        return False


def _respond(status: str, headers: list[tuple[str, str]], body: list[bytes],
             method: str = "GET") -> Socket:
    sock = Socket()
    resp = wsgi.Response(Request(method), sock, Config())
    resp.start_response(status, headers)
    for chunk in body:
        resp.write(chunk)
    resp.close()
    return sock


CASES = [  # (status, headers, body writes, method, writes gunicorn makes, writes we make)
    ("200 OK", [("Content-Type", "application/json"), ("Content-Length", "12")],
     [b'{"ok": true}'], "GET", 2, 1),
    ("200 OK", [("Content-Type", "text/event-stream")], [b"data: 1\n\n", b"", b"data: 2\n\n"],
     "GET", 4, 3),
    ("204 No Content", [], [], "GET", 1, 1),
    ("200 OK", [("Content-Length", "5")], [b"hello"], "HEAD", 1, 1),
    ("200 OK", [("Content-Length", "3")], [b"hello"], "GET", 2, 2),  # longer than declared
    ("200 OK", [], [b"", b"late"], "GET", 3, 3),  # an empty first write sends the head alone
]


GUNICORN_WRITE = wsgi.Response.write


@pytest.fixture
def gunicorn_alone():
    """gunicorn's own writer at the start of the test, and again after it."""
    wsgi.Response.write = GUNICORN_WRITE
    yield
    wsgi.Response.write = GUNICORN_WRITE


@pytest.mark.parametrize(("status", "headers", "body", "method", "their_writes", "our_writes"),
                         CASES)
def test_same_bytes_as_gunicorn_in_fewer_writes(gunicorn_alone, monkeypatch, status, headers,
                                                 body, method, their_writes, our_writes):
    monkeypatch.setattr("gunicorn.util.http_date", lambda *a: "Thu, 03 Dec 2026 00:00:00 GMT")
    theirs = _respond(status, headers, body, method)
    gunicorn_writes.install()
    ours = _respond(status, headers, body, method)
    assert b"".join(ours.writes) == b"".join(theirs.writes)
    assert (len(theirs.writes), len(ours.writes)) == (their_writes, our_writes)


def test_a_stream_sends_its_head_with_the_first_event(gunicorn_alone):
    gunicorn_writes.install()
    sock = Socket()
    resp = wsgi.Response(Request(), sock, Config())
    resp.start_response("200 OK", [("Content-Type", "text/event-stream")])
    resp.write(b": ping\n\n")
    assert len(sock.writes) == 1
    assert sock.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert sock.writes[0].endswith(b"\r\n\r\n8\r\n: ping\n\n\r\n")
    resp.write(b"data: x\n\n")
    resp.close()
    assert sock.writes[1:] == [b"9\r\ndata: x\n\n\r\n", b"0\r\n\r\n"]
