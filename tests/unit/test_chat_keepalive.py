"""`: ping` comments while the upstream is silent; items and errors pass through in order."""

from __future__ import annotations

import threading

import pytest

from beatra.chat.keepalive import with_pings


def test_silence_yields_pings_then_items_in_order():
    release = threading.Event()

    def slow():
        yield 1
        release.wait(5)
        yield 2

    out = with_pings(slow(), interval=0.05)
    assert next(out) == 1
    assert next(out) is None  # silence → a ping slot
    release.set()
    rest = [x for x in out if x is not None]
    assert rest == [2]


def test_source_errors_are_reraised_after_its_items():
    def broken():
        yield "a"
        raise ConnectionError("cut")

    out = with_pings(broken(), interval=5)
    assert next(out) == "a"
    with pytest.raises(ConnectionError):
        next(out)


def test_closing_stops_the_reader():
    done = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                i += 1
                yield i
        finally:
            done.set()

    out = with_pings(endless(), interval=5)
    assert next(out) == 1
    out.close()
    assert done.wait(5)  # the reader noticed and closed its source
