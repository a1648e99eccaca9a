"""Signed, expiring content URLs: HMAC-SHA256(secret, "<artifact id>.<expiry>").

The key is BEATRA_SECRET_KEY. Without it (development) a random key is generated once and kept
in <var dir>/secret_key, so URLs survive restarts and every worker process agrees on it.
Production must set BEATRA_SECRET_KEY (and rotate it by changing it: old URLs then answer 403).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from pathlib import Path

from beatra.config import Settings, var_dir

_dev_keys: dict[Path, bytes] = {}
_lock = threading.Lock()


def _dev_key(path: Path) -> bytes:
    with _lock:
        if path in _dev_keys:
            return _dev_keys[path]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            try:
                os.link(tmp, path)  # first writer wins; the others read its key
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        key = path.read_text().strip().encode()
        _dev_keys[path] = key
        return key


def signing_key(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    return _dev_key(var_dir() / "secret_key")


def _mac(key: bytes, artifact_id: str, expires: int) -> str:
    digest = hmac.new(key, f"content:{artifact_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def expiry(ttl_seconds: int, now: float | None = None) -> int:
    """now + ttl, rounded up to the minute (or hour for day-long URLs) so repeated calls
    hand out the same URL for a while and browsers can cache it."""
    now = time.time() if now is None else now
    step = 3600 if ttl_seconds >= 6 * 3600 else 60 if ttl_seconds >= 600 else 1
    target = int(now) + max(1, ttl_seconds)
    return -(-target // step) * step


def sign(settings: Settings, artifact_id: str, expires: int) -> str:
    return _mac(signing_key(settings), artifact_id, expires)


def verify(settings: Settings, artifact_id: str, expires: str | None, sig: str | None,
           now: float | None = None) -> str | None:
    """None when the signature is good and unexpired, else the reason it is not."""
    if not expires or not sig:
        return "missing signature"
    try:
        exp = int(expires)
    except ValueError:
        return "malformed expiry"
    if not hmac.compare_digest(_mac(signing_key(settings), artifact_id, exp).encode(),
                               sig.encode()):
        return "bad signature"
    if exp < (time.time() if now is None else now):
        return "expired"
    return None
