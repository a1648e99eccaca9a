"""Creating accounts, issuing/revoking keys, and checking a presented key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, update

from beatra.accounts.models import Account, ApiKey
from beatra.billing import wallet
from beatra.extensions import db, rowcount, table_of
from beatra.ids import new_id
from beatra.timeutil import utcnow

KEY_PREFIX = "btr_"
_PREFIX_LEN = 12  # non-secret lookup handle
_SECRET_BYTES = 32


@dataclass(frozen=True)
class Caller:
    account_id: str
    key_id: str
    # The key's own rate limits (None: the catalog default; 0: unlimited).
    rpm_limit: int | None = None
    stream_limit: int | None = None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_account(name: str, credits: Decimal | None = None) -> Account:
    account = Account(id=new_id("acct"), name=name)
    db.session.add(account)
    db.session.flush()
    wallet.create_wallet(account.id)
    db.session.commit()
    if credits:
        wallet.grant(account.id, credits, reason="initial credits")
    return account


def get_account(account_id: str) -> Account | None:
    return db.session.get(Account, account_id)


def create_key(account_id: str) -> tuple[ApiKey, str]:
    """Returns the stored key row and the secret, which is never retrievable again."""
    prefix = secrets.token_hex(_PREFIX_LEN // 2)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    key = ApiKey(id=new_id("key"), account_id=account_id, prefix=prefix, secret_hash=_hash(secret))
    db.session.add(key)
    db.session.commit()
    return key, secret


def revoke_key(key_id: str) -> bool:
    result = db.session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    db.session.commit()
    return rowcount(result) == 1


_key_table = table_of(ApiKey)
_lookup = select(
    _key_table.c.id, _key_table.c.account_id, _key_table.c.secret_hash, _key_table.c.revoked_at,
    _key_table.c.rpm_limit, _key_table.c.stream_limit,
).where(_key_table.c.prefix == db.bindparam("prefix"))


def authenticate(presented: str) -> Caller | None:
    """Constant-time check of a presented key; None when unknown, malformed or revoked."""
    if not presented.startswith(KEY_PREFIX):
        return None
    prefix, sep, _ = presented[len(KEY_PREFIX):].partition("_")
    if not sep or len(prefix) != _PREFIX_LEN:
        return None
    with db.engine.connect() as conn:  # one indexed read; no session bookkeeping per request
        row = conn.execute(_lookup, {"prefix": prefix}).first()
    # Hash even on a miss so timing does not reveal which prefixes exist.
    digest = _hash(presented)
    if row is None:
        hmac.compare_digest(digest, "0" * 64)
        return None
    if not hmac.compare_digest(digest, row.secret_hash) or row.revoked_at is not None:
        return None
    return Caller(account_id=row.account_id, key_id=row.id, rpm_limit=row.rpm_limit,
                  stream_limit=row.stream_limit)


def set_key_limits(key_id: str, values: dict[str, int | None]) -> ApiKey | None:
    """Set `rpm_limit` / `stream_limit` (None: back to the catalog default; 0: unlimited)."""
    key = db.session.get(ApiKey, key_id)
    if key is None:
        return None
    for name, value in values.items():
        setattr(key, name, value)
    db.session.commit()
    return key
