"""Opaque keyset cursors: base64url JSON naming the last id of a page and the order it was
read in, so a cursor from one order cannot silently page another."""

from __future__ import annotations

import base64
import binascii

import orjson

from beatra.errors import invalid


def encode_cursor(order: str, last_id: str) -> str:
    raw = orjson.dumps({"v": 1, "o": order, "id": last_id})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, order: str) -> str:
    """The last id the cursor names; 422 at /cursor (or /order) for one this API did not give."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
        last_id = data["id"]
        ok = data.get("v") == 1 and isinstance(last_id, str) and len(last_id) <= 40
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        ok = False
    if not ok:
        raise invalid("cursor is not one this API returned.", "/cursor")
    if data.get("o") != order:
        raise invalid(f"cursor was returned for order={data.get('o')}; pass the same order.",
                      "/order")
    return last_id
