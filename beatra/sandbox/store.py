"""Small in-process registries shared by the music simulators.

Audio is regenerated on demand from a recipe instead of being kept as bytes, so a long
load test does not grow memory with every generated song. Entries are capped anyway.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedStore(Generic[V]):
    """Thread-safe insertion-ordered dict that forgets its oldest entries beyond ``cap``."""

    def __init__(self, cap: int = 10000) -> None:
        self._cap = cap
        self._items: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: str, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._cap:
                self._items.popitem(last=False)

    def get(self, key: str) -> V | None:
        with self._lock:
            return self._items.get(key)
