"""The upstream read-ahead: pings while silent, items and errors in order, and a stop that never
touches the connection's reader from another thread (the helper closes it itself)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from beatra.chat.keepalive import Opened, ReadAhead, abort_socket


def _opened(items, closed: threading.Event | None = None) -> Opened:
    return Opened(iter(items) if not callable(items) else items(),
                  close=(closed.set if closed else lambda: None), abort=lambda: None)


def test_silence_yields_pings_then_items_in_order():
    release = threading.Event()

    def slow():
        yield 1
        release.wait(5)
        yield 2

    reader = ReadAhead(lambda: _opened(slow))
    reader.start()
    assert reader.wait_opened(5)
    out = reader.items(0.05, opened=True)
    assert next(out) == 1
    assert next(out) is None  # silence → a ping slot
    release.set()
    assert [x for x in out if x is not None] == [2]


def test_a_slow_opener_gives_pings_before_the_first_item():
    def opener():
        time.sleep(0.3)
        return _opened([b"x"])

    reader = ReadAhead(opener)
    reader.start()
    assert reader.wait_opened(0.05) is False
    items = list(reader.items(0.05, opened=False))
    assert None in items and items[-1] == b"x"


def test_opening_and_reading_errors_are_reraised():
    def fails():
        raise ConnectionError("refused")

    reader = ReadAhead(fails)
    reader.start()
    with pytest.raises(ConnectionError):
        reader.wait_opened(5)

    def broken():
        yield "a"
        raise ConnectionError("cut")

    reader = ReadAhead(lambda: _opened(broken))
    reader.start()
    out = reader.items(5, opened=False)
    assert next(out) == "a"
    with pytest.raises(ConnectionError):
        next(out)


def test_stop_ends_the_reader_which_closes_its_source():
    closed = threading.Event()

    def endless():
        i = 0
        while True:
            i += 1
            yield i

    reader = ReadAhead(lambda: _opened(endless, closed))
    reader.start()
    assert next(reader.items(5, opened=False)) == 1
    reader.stop()
    assert closed.wait(5)


def test_stop_unblocks_a_read_on_a_silent_socket_without_touching_the_reader():
    """The helper is blocked inside the response's reader; stop() shuts the socket down, the
    helper's read fails at once and the helper closes the response itself."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []

    def serve():
        conn, _ = server.accept()
        accepted.append(conn)
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n6\r\ndata:1\r\n")  # then silence

    threading.Thread(target=serve, daemon=True).start()
    closed = threading.Event()

    def opener():
        resp = requests.get(f"http://127.0.0.1:{port}/", stream=True, timeout=(5, 30))

        def close():
            resp.close()
            closed.set()

        return Opened(resp.iter_content(chunk_size=None), close, abort_socket(resp))

    reader = ReadAhead(opener)
    reader.start()
    assert reader.wait_opened(5)
    out = reader.items(5, opened=True)
    assert next(out) == b"data:1"
    started = time.monotonic()
    reader.stop()  # the helper is blocked reading the silent socket
    assert closed.wait(5)
    assert time.monotonic() - started < 2
    server.close()
    for conn in accepted:
        conn.close()
