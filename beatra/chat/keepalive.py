"""SSE keep-alive: `: ping` comments while the upstream is silent.

A reasoning model may think for minutes before its next token; proxies and clients that see
no bytes for that long cut the connection. The upstream is read ahead by a helper thread (a
greenlet under gevent) so the relay can wake up on a timer and send a comment, which every
SSE client ignores.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
PING = b": ping\n\n"
PING_SECONDS = float(os.environ.get("BEATRA_SSE_PING_SECONDS", "15"))
_END = object()


class _Raised:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def with_pings(source: Iterator[T], interval: float) -> Iterator[T | None]:
    """The items of `source` as they arrive, and None after each `interval` of silence.

    Exceptions from `source` are re-raised here. Closing this generator stops the reader as
    soon as `source` yields or fails (close the underlying connection to make it fail)."""
    items: queue.Queue[object] = queue.Queue(maxsize=256)  # bounded: a slow client pushes back
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for item in source:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which decides
            put(_Raised(exc))
        else:
            put(_END)

    threading.Thread(target=pump, name="sse-read-ahead", daemon=True).start()
    try:
        while True:
            try:
                item = items.get(timeout=interval)
            except queue.Empty:
                yield None
                continue
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
