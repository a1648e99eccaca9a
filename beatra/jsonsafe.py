"""JSON encoding of stored data that never raises on odd text.

orjson refuses strings holding unpaired UTF-16 surrogates ("\\udc00"), which Python's own json
accepts. The input guard refuses them at the door, but rows written before it (task inputs,
webhook payloads, log fields) may still hold them: encoding those must not crash a worker or
leave a webhook delivery stuck, so they are replaced with U+FFFD instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub(value: Any) -> Any:
    """`value` with every unpaired surrogate in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None,
          option: int | None = None) -> bytes:
    """orjson.dumps, falling back to a scrubbed copy when a string cannot be UTF-8 encoded."""
    try:
        return orjson.dumps(value, default=default, option=option)
    except orjson.JSONEncodeError:
        # `default` output is scrubbed too: it may return the offending text itself.
        def scrubbed_default(obj: Any) -> Any:
            return scrub(default(obj)) if default is not None else obj

        return orjson.dumps(scrub(value), default=scrubbed_default, option=option)


def has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
