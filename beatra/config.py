"""Settings, read from the environment in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
DEFAULT_CATALOG = PROJECT_DIR / "catalogs" / "sandbox.yaml"
DEFAULT_SANDBOX_URL = "http://127.0.0.1:8199"


def _default_database_url() -> str:
    var = Path(os.environ.get("BEATRA_VAR_DIR", "./var")).resolve()
    return f"sqlite:///{var / 'beatra.db'}"


@dataclass
class Settings:
    database_url: str = field(default_factory=_default_database_url)
    redis_url: str | None = None
    catalog_path: str = str(DEFAULT_CATALOG)
    storage_url: str = "file://./var/artifacts"
    public_url: str = "http://127.0.0.1:8000"
    sandbox_url: str = DEFAULT_SANDBOX_URL
    net_allowlist: str = ""
    log_level: str = "INFO"
    # Bodies above this are refused with 413 before they are read (uploads have their own cap).
    max_json_body_bytes: int = 16 * 1024 * 1024
    # Largest file POST /v1/uploads (and a fetched media URL) may carry: the contract's 100 MB.
    upload_max_bytes: int = 100 * 1024 * 1024
    # HMAC key for signed content URLs. Empty: a dev key is generated once under the var dir
    # (beatra.storage.signing); production must set BEATRA_SECRET_KEY.
    secret_key: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("DATABASE_URL") or _default_database_url(),
            redis_url=env.get("REDIS_URL") or None,
            catalog_path=env.get("BEATRA_CATALOG") or str(DEFAULT_CATALOG),
            storage_url=env.get("BEATRA_STORAGE_URL") or "file://./var/artifacts",
            public_url=(env.get("BEATRA_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            sandbox_url=(env.get("BEATRA_SANDBOX_URL") or DEFAULT_SANDBOX_URL).rstrip("/"),
            net_allowlist=env.get("BEATRA_NET_ALLOWLIST", ""),
            log_level=env.get("BEATRA_LOG_LEVEL", "INFO"),
            secret_key=env.get("BEATRA_SECRET_KEY", ""),
        )


def normalise_database_url(url: str) -> str:
    """Heroku-style `postgres://` URLs → the psycopg 3 driver SQLAlchemy needs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
