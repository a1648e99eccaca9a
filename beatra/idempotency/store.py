"""The records behind Idempotency-Key, each step a conditional statement so concurrent
requests with one key resolve to exactly one owner (a UNIQUE constraint decides the race)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from beatra.extensions import db, rowcount, table_of
from beatra.idempotency.models import IdempotencyRecord
from beatra.timeutil import utcnow

_r = table_of(IdempotencyRecord)


@dataclass(frozen=True)
class Owned:
    """This request runs the operation; its response is stored under `record_id`."""

    record_id: int
    token: str


@dataclass(frozen=True)
class Found:
    """Another request holds the key: its fingerprint, status and (when completed) response."""

    fingerprint: str
    status: str
    response_status: int | None
    response_headers: dict[str, Any] | None
    response_body: bytes | None


def acquire(account_id: str, endpoint: str, key: str, fingerprint: str, *,
            ttl_seconds: float, lease_seconds: float) -> Owned | Found:
    """Take the key, or report who has it. An expired record, or an unfinished one whose lease
    ran out with the same fingerprint (its process died), is taken over."""
    for _ in range(3):
        now = utcnow()
        token = secrets.token_hex(16)
        values = {"fingerprint": fingerprint, "status": "in_progress", "owner_token": token,
                  "lease_until": now + timedelta(seconds=lease_seconds),
                  "response_status": None, "response_headers": None, "response_body": None,
                  "created_at": now, "expires_at": now + timedelta(seconds=ttl_seconds)}
        try:
            result = db.session.execute(insert(_r).values(
                account_id=account_id, endpoint=endpoint, key=key, **values))
            db.session.commit()
            inserted = cast(CursorResult[Any], result).inserted_primary_key
            assert inserted is not None  # one row was inserted
            return Owned(int(inserted[0]), token)
        except IntegrityError:
            db.session.rollback()
        row = db.session.execute(
            select(_r).where(_r.c.account_id == account_id, _r.c.endpoint == endpoint,
                             _r.c.key == key)).first()
        db.session.commit()
        if row is None:
            continue  # purged between our insert and our read: try again
        taken = db.session.execute(
            update(_r).where(
                _r.c.id == row.id,
                or_(_r.c.expires_at < now,
                    and_(_r.c.status == "in_progress", _r.c.lease_until < now,
                         _r.c.fingerprint == fingerprint)))
            .values(**values))
        db.session.commit()
        if rowcount(taken) == 1:
            return Owned(int(row.id), token)
        return Found(row.fingerprint, row.status, row.response_status, row.response_headers,
                     row.response_body)
    raise RuntimeError("idempotency record kept vanishing")  # pragma: no cover


def complete(owned: Owned, status: int, headers: dict[str, str], body: bytes) -> bool:
    result = db.session.execute(
        update(_r).where(_r.c.id == owned.record_id, _r.c.owner_token == owned.token,
                         _r.c.status == "in_progress")
        .values(status="completed", owner_token=None, response_status=status,
                response_headers=headers, response_body=body))
    db.session.commit()
    return rowcount(result) == 1


def release(owned: Owned) -> None:
    """Forget an outcome a retry should redo (5xx, 401, 402, 409, 429, a cut stream)."""
    db.session.execute(delete(_r).where(_r.c.id == owned.record_id,
                                        _r.c.owner_token == owned.token))
    db.session.commit()


def purge_expired(limit: int = 1000) -> int:
    ids = select(_r.c.id).where(_r.c.expires_at < utcnow()).limit(limit).scalar_subquery()
    result = db.session.execute(delete(_r).where(_r.c.id.in_(ids)))
    db.session.commit()
    return rowcount(result)
