"""Creating accounts, issuing/revoking keys, and checking a presented key."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from beatra import fastsql
from beatra.accounts import keycache
from beatra.accounts.caller import Caller
from beatra.accounts.models import Account, ApiKey
from beatra.billing import wallet
from beatra.billing.models import Wallet
from beatra.extensions import db, rowcount, table_of
from beatra.ids import new_id
from beatra.timeutil import utcnow

log = logging.getLogger(__name__)

KEY_PREFIX = "btr_"
_PREFIX_LEN = 12  # non-secret lookup handle
_SECRET_BYTES = 32
# last_used_at is written at most this often per key and process: no write per request.
LAST_USED_EVERY_SECONDS = 60.0


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


def list_accounts() -> list[tuple[Account, Decimal]]:
    """Every account with its balance, oldest first."""
    rows = db.session.execute(
        select(Account, Wallet.balance).join(Wallet, Wallet.account_id == Account.id)
        .order_by(Account.created_at, Account.id))
    return [(account, balance) for account, balance in rows]


def create_key(account_id: str, *, name: str | None = None, credit_limit: Decimal | None = None,
               expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """Returns the stored key row and the secret, which is never retrievable again."""
    prefix = secrets.token_hex(_PREFIX_LEN // 2)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    key = ApiKey(id=new_id("key"), account_id=account_id, prefix=prefix, secret_hash=_hash(secret),
                 name=name, credit_limit=credit_limit, expires_at=expires_at,
                 spent=Decimal(0), held=Decimal(0))
    db.session.add(key)
    db.session.commit()
    return key, secret


_UNSET: Any = object()


def update_key(key_id: str, *, name: str | None = _UNSET, credit_limit: Decimal | None = _UNSET,
               expires_at: datetime | None = _UNSET) -> ApiKey | None:
    """Change a key's name, credit limit (None: no limit) or expiry (None: never). A limit below
    what the key already spent is allowed: its next reserves are refused (beatra.billing.wallet
    reads the limit under the key row's lock, so no reserve slips past a lowered limit)."""
    values = {name_: value for name_, value in (("name", name), ("credit_limit", credit_limit),
                                                 ("expires_at", expires_at))
              if value is not _UNSET}
    if values:
        result = db.session.execute(update(ApiKey).where(ApiKey.id == key_id).values(**values))
        db.session.commit()
        keycache.forget(key_id)
        if rowcount(result) != 1:
            return None
    return db.session.get(ApiKey, key_id)


def get_key(key_id: str) -> ApiKey | None:
    return db.session.get(ApiKey, key_id)


def list_keys(account_id: str) -> list[ApiKey]:
    return list(db.session.scalars(
        select(ApiKey).where(ApiKey.account_id == account_id)
        .order_by(ApiKey.created_at, ApiKey.id)))


def expired(expires_at: datetime | None, now: datetime | None = None) -> bool:
    if expires_at is None:
        return False
    if expires_at.tzinfo is None:  # SQLite hands back naive datetimes; we only store UTC
        expires_at = expires_at.replace(tzinfo=UTC)
    return expires_at <= (now or utcnow())


def revoke_key(key_id: str) -> bool:
    result = db.session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    db.session.commit()
    keycache.forget(key_id)
    return rowcount(result) == 1


_key_table = table_of(ApiKey)
_lookup = select(
    _key_table.c.id, _key_table.c.account_id, _key_table.c.secret_hash, _key_table.c.revoked_at,
    _key_table.c.rpm_limit, _key_table.c.stream_limit, _key_table.c.expires_at,
).where(_key_table.c.prefix == db.bindparam("prefix"))
_touch = (update(_key_table).where(_key_table.c.id == db.bindparam("key"))
          .values(last_used_at=db.bindparam("now")))
_last_touched: dict[str, float] = {}  # key id -> monotonic time of its last write here
_touch_lock = threading.Lock()


def _note_use(key_id: str) -> None:
    """Record a key's use, coarsely: one UPDATE per key per process per minute at most."""
    now = time.monotonic()
    with _touch_lock:
        last = _last_touched.get(key_id)
        if last is not None and now - last < LAST_USED_EVERY_SECONDS:
            return
        _last_touched[key_id] = now
    try:
        with db.engine.begin() as conn:
            conn.execute(_touch, {"key": key_id, "now": utcnow()})
    except (DBAPIError, PoolTimeout) as exc:  # bookkeeping only: never fail the request
        log.warning("could not record a key's last use",
                    extra={"fields": {"key_id": key_id, "error": str(exc)}})


def authenticate(presented: str, cache_seconds: float = 0.0) -> Caller | None:
    """Constant-time check of a presented key; None when unknown, malformed, revoked or
    expired. With `cache_seconds`, a key that passed within that many seconds in this process
    is not looked up again (beatra.accounts.keycache)."""
    if not presented.startswith(KEY_PREFIX):
        return None
    prefix, sep, _ = presented[len(KEY_PREFIX):].partition("_")
    if not sep or len(prefix) != _PREFIX_LEN:
        return None
    # Hashed on every path, so timing does not reveal which prefixes exist.
    digest = _hash(presented)
    if cache_seconds > 0:
        recent = keycache.recall(digest, cache_seconds)
        if recent is not None and not expired(recent.expires_at):
            _note_use(recent.caller.key_id)
            return recent.caller
    with fastsql.transaction(db.engine) as tx:  # one indexed read, prebuilt (hot path)
        row = tx.first(_lookup, {"prefix": prefix})
    if row is None:
        hmac.compare_digest(digest, "0" * 64)
        return None
    key_id, account_id, secret_hash, revoked_at, rpm_limit, stream_limit, expires_at = row
    if not hmac.compare_digest(digest, secret_hash) or revoked_at is not None:
        return None
    if expired(expires_at):
        return None
    _note_use(key_id)
    caller = Caller(account_id=account_id, key_id=key_id, rpm_limit=rpm_limit,
                    stream_limit=stream_limit)
    if cache_seconds > 0:
        keycache.remember(digest, caller, expires_at)
    return caller


def set_key_limits(key_id: str, values: dict[str, int | None]) -> ApiKey | None:
    """Set `rpm_limit` / `stream_limit` (None: back to the catalog default; 0: unlimited)."""
    key = db.session.get(ApiKey, key_id)
    if key is None:
        return None
    for name, value in values.items():
        setattr(key, name, value)
    db.session.commit()
    keycache.forget(key_id)
    return key
