"""Settings, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
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
    # Task engine (beatra.tasks), in seconds; tests and benchmarks shorten them.
    task_heartbeat_seconds: float = 10.0  # a running task renews its lease this often
    task_lease_seconds: float = 45.0  # a claim not renewed for this long is presumed dead
    task_sweep_seconds: float = 15.0  # how often the sweeper looks for lost work
    task_requeue_seconds: float = 120.0  # a queued task untouched this long is enqueued again
    task_max_attempts: int = 3  # starts (crash recoveries included) before a task fails
    task_worker_threads: int = 16  # embedded runner: concurrent tasks per web process
    # Webhooks (beatra.webhooks): seconds to wait before each retry; attempts = len + 1.
    # Default: 8 attempts over ~23 h. Tests shorten it (BEATRA_WEBHOOK_RETRY_SCHEDULE=0.2,0.2).
    webhook_retry_schedule: tuple[float, ...] = (30, 120, 600, 1800, 7200, 21600, 50400)
    # Idempotency-Key: responses are kept this long; an unfinished first request holds the key
    # for `idempotency_lease_seconds`, after which a retry may take it over (its worker died).
    idempotency_ttl_seconds: float = 24 * 3600
    idempotency_lease_seconds: float = 600
    # A concurrent-stream slot expires after this long even if its process died holding it.
    stream_slot_ttl_seconds: float = 900
    # A chat hold whose request's process died is settled by the sweeper after this long
    # without a lease renewal (beatra.billing.holds).
    hold_reap_seconds: float = 900
    # `: ping` comment interval while an upstream stream is silent (also before its headers).
    sse_ping_seconds: float = 15
    # Browser origins allowed by CORS (BEATRA_CORS_ORIGINS, comma-separated; empty = off).
    cors_origins: tuple[str, ...] = ()
    # Postgres pool per process (README "Operating beatra" has the arithmetic against
    # max_connections). Bounded: past pool_size + max_overflow a checkout waits up to
    # db_pool_timeout seconds, then the request answers 503 (retryable) instead of piling up.
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_pool_timeout: float = 3.0
    # A SELECT 1 on every checkout; off by default (a dropped connection is invalidated on first
    # use, that request answers 503, the pool reconnects). db_pool_recycle bounds idle age.
    db_pool_pre_ping: bool = False
    db_pool_recycle: float = 1800
    # s3:// store: create the bucket at start-up when it is missing (else start-up stops).
    s3_create_bucket: bool = True
    # When set, GET /metrics requires `Authorization: Bearer <token>`.
    metrics_token: str = ""

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
            cors_origins=tuple(o.strip().rstrip("/") for o in
                               env.get("BEATRA_CORS_ORIGINS", "").split(",") if o.strip()),
            metrics_token=env.get("BEATRA_METRICS_TOKEN", ""),
            s3_create_bucket=env.get("BEATRA_S3_CREATE_BUCKET", "1").lower()
            not in ("0", "false", "no"),
            **_task_env(env),
            **_webhook_env(env),
            **_db_env(env),
        )


_TASK_ENV = {
    "task_heartbeat_seconds": ("BEATRA_TASK_HEARTBEAT_SECONDS", float),
    "task_lease_seconds": ("BEATRA_TASK_LEASE_SECONDS", float),
    "task_sweep_seconds": ("BEATRA_TASK_SWEEP_SECONDS", float),
    "task_requeue_seconds": ("BEATRA_TASK_REQUEUE_SECONDS", float),
    "task_max_attempts": ("BEATRA_TASK_MAX_ATTEMPTS", int),
    "task_worker_threads": ("BEATRA_TASK_THREADS", int),
    "hold_reap_seconds": ("BEATRA_HOLD_REAP_SECONDS", float),
    "sse_ping_seconds": ("BEATRA_SSE_PING_SECONDS", float),
}


def _task_env(env: Mapping[str, str]) -> dict[str, float | int]:
    """Task engine knobs that are set in the environment (unset ones keep their defaults)."""
    out: dict[str, float | int] = {}
    for name, (var, kind) in _TASK_ENV.items():
        if env.get(var):
            try:
                out[name] = kind(env[var])
            except ValueError:
                raise SystemExit(f"{var} must be a number, not {env[var]!r}") from None
    return out


_DB_ENV = {
    "db_pool_size": ("BEATRA_DB_POOL_SIZE", int),
    "db_max_overflow": ("BEATRA_DB_MAX_OVERFLOW", int),
    "db_pool_timeout": ("BEATRA_DB_POOL_TIMEOUT", float),
    "db_pool_recycle": ("BEATRA_DB_POOL_RECYCLE", float),
}


def _db_env(env: Mapping[str, str]) -> dict[str, float | int | bool]:
    out: dict[str, float | int | bool] = {}
    for name, (var, kind) in _DB_ENV.items():
        if env.get(var):
            try:
                value = kind(env[var])
            except ValueError:
                raise SystemExit(f"{var} must be a number, not {env[var]!r}") from None
            if value < 0:
                raise SystemExit(f"{var} must not be negative")
            out[name] = value
    if env.get("BEATRA_DB_POOL_PRE_PING"):
        out["db_pool_pre_ping"] = env["BEATRA_DB_POOL_PRE_PING"].lower() in ("1", "true", "yes")
    return out


def _webhook_env(env: Mapping[str, str]) -> dict[str, tuple[float, ...] | float]:
    out: dict[str, tuple[float, ...] | float] = {}
    text = env.get("BEATRA_WEBHOOK_RETRY_SCHEDULE", "").strip()
    if text:
        try:
            schedule = tuple(float(part) for part in text.split(","))
        except ValueError:
            raise SystemExit("BEATRA_WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, "
                             f"not {text!r}") from None
        if any(s < 0 for s in schedule):
            raise SystemExit("BEATRA_WEBHOOK_RETRY_SCHEDULE must not be negative")
        out["webhook_retry_schedule"] = schedule
    for name, var in (("idempotency_lease_seconds", "BEATRA_IDEMPOTENCY_LEASE_SECONDS"),
                      ("stream_slot_ttl_seconds", "BEATRA_STREAM_SLOT_TTL_SECONDS")):
        if env.get(var):
            try:
                out[name] = float(env[var])
            except ValueError:
                raise SystemExit(f"{var} must be a number, not {env[var]!r}") from None
    return out


def normalise_database_url(url: str) -> str:
    """Heroku-style `postgres://` URLs → the psycopg 3 driver SQLAlchemy needs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
