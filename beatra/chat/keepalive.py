"""Upstream read-ahead for SSE relays: `: ping` comments while the upstream is silent, and a
teardown that never races the upstream's reader.

A reasoning model may think for a minute before its response headers, and for minutes between
tokens; proxies and clients that see no bytes for that long cut the connection. A helper thread
(a greenlet under gevent) opens the upstream and reads it into a bounded queue, so the relay can
wake on a timer and send a comment, which every SSE client ignores.

Only the helper thread ever touches the upstream connection's reader. Stopping from the relay
(client gone, error) sets a flag and shuts the socket down (a syscall, safe from any thread):
the helper's blocked read then fails at once, and the helper closes the response itself. Closing
the response from the relay while the helper reads it is what used to raise "reentrant call
inside <_io.BufferedReader>" and skip the settlement.
"""

from __future__ import annotations

import _thread
import logging
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
PING = b": ping\n\n"
OPENED = object()  # the upstream answered (first item the helper queues)
_END = object()


class _Raised:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


@dataclass
class Opened(Generic[T]):
    """What the opener returns: the items, and how to abort/close the connection."""

    items: Iterator[T]
    close: Callable[[], None]  # called by the helper thread only
    abort: Callable[[], None]  # thread-safe: make a blocked read fail (socket shutdown)


def abort_socket(resp: Any) -> Callable[[], None]:
    """A thread-safe abort for a streamed requests/urllib3 response: shut its socket down."""

    def abort() -> None:
        conn = getattr(getattr(resp, "raw", None), "connection", None)
        sock = getattr(conn, "sock", None)
        if sock is None:
            return  # not connected (a test double, or already released): nothing blocks
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError as exc:  # already closed by the peer or the helper
            log.debug("upstream socket already closed", extra={"fields": {"error": str(exc)}})

    return abort


class ReadAhead(Generic[T]):
    def __init__(self, opener: Callable[[], Opened[T]], *, maxsize: int = 256) -> None:
        self._items: queue.Queue[object] = queue.Queue(maxsize=maxsize)  # a slow client pushes back
        self._stop = threading.Event()
        self._abort: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._opener = opener

    def start(self) -> None:
        # The low-level start: a bare greenlet under gevent (a daemon thread otherwise), with
        # none of threading.Thread's bookkeeping, which was ~7% of a 1,000-stream burst.
        _thread.start_new_thread(self._pump, ())

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._items.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        try:
            opened = self._opener()
        except BaseException as exc:  # handed to the consumer, which decides
            self._put(_Raised(exc))
            return
        try:
            with self._lock:
                self._abort = opened.abort
                stopped = self._stop.is_set()
            if stopped or not self._put(OPENED):
                return
            try:
                for item in opened.items:
                    if not self._put(item):
                        return
            except BaseException as exc:
                self._put(_Raised(exc))
            else:
                self._put(_END)
        finally:
            try:
                opened.close()
            except Exception:
                log.exception("closing the upstream response failed")

    def wait_opened(self, timeout: float) -> bool:
        """True once the upstream answered, False if it has not within `timeout`. Raises what
        opening raised."""
        try:
            item = self._items.get(timeout=timeout)
        except queue.Empty:
            return False
        if isinstance(item, _Raised):
            raise item.exc
        if item is not OPENED:
            raise RuntimeError("read-ahead protocol error: expected the opened marker")
        return True

    def items(self, interval: float, *, opened: bool) -> Iterator[T | None]:
        """The upstream's items as they arrive, None after each `interval` of silence.
        Exceptions from opening or reading are re-raised here."""
        while True:
            try:
                item = self._items.get(timeout=interval)
            except queue.Empty:
                yield None
                continue
            if item is OPENED and not opened:
                opened = True
                continue
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item  # type: ignore[misc]  # queue holds T between the markers

    def stop(self) -> None:
        """Stop reading: the helper closes the connection as soon as its read fails. Never
        raises; safe to call more than once and from any thread."""
        self._stop.set()
        with self._lock:
            abort = self._abort
        if abort is not None:
            abort()
