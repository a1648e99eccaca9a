"""Settings, read from the environment in one place: every other module gets its settings from
here (`current_settings()` in a request or job, `settings_of(app)`, or the process-wide values
below), never from os.environ.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask, current_app

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
DEFAULT_CATALOG = PROJECT_DIR / "catalogs" / "sandbox.yaml"
DEFAULT_SANDBOX_URL = "http://127.0.0.1:8199"


SETTINGS_KEY = "beatra.settings"


NET_ALLOWLIST_ENV = "BEATRA_NET_ALLOWLIST"
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
OPENAI_WAIT_ENV = "BEATRA_OPENAI_WAIT_SECONDS"
# The longest (and default) wait of a /openai/v1 images call for its task.
OPENAI_WAIT_MAX_SECONDS = 120.0


# Process-level reads, for code that runs before or without an app (the dev server, the task
# worker CLI, metrics at import); inside an app, use its Settings.
def var_dir() -> Path:
    """Where local state lives by default (SQLite file, the dev signing key, devserver state)."""
    return Path(os.environ.get("BEATRA_VAR_DIR", "./var")).resolve()


def log_level() -> str:
    """BEATRA_LOG_LEVEL as set (default INFO); Settings.log_level in an app."""
    return os.environ.get("BEATRA_LOG_LEVEL", "INFO")


def metrics_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR when set and not empty: prometheus_client's multiprocess mode
    (beatra.metrics), read now (prometheus_client itself reads it at its import)."""
    return os.environ.get(METRICS_DIR_ENV) or None


def net_allowlist_is_set() -> bool:
    """Whether this process's environment sets BEATRA_NET_ALLOWLIST at all (even empty)."""
    return os.environ.get(NET_ALLOWLIST_ENV) is not None


def environment_copy() -> dict[str, str]:
    """A copy of this process's environment, to build a child process's from."""
    return dict(os.environ)


def openai_wait_seconds(raw: Any) -> float:
    """A /openai/v1 wait in seconds (from BEATRA_OPENAI_WAIT_SECONDS or an app's config);
    a malformed or out-of-range one stops start-up with the variable's name."""
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        raise SystemExit(f"{OPENAI_WAIT_ENV} must be a number of seconds, not {raw!r}") from None
    if not 0 <= seconds <= OPENAI_WAIT_MAX_SECONDS:
        raise SystemExit(f"{OPENAI_WAIT_ENV} must be between 0 and "
                         f"{OPENAI_WAIT_MAX_SECONDS:g} seconds")
    return seconds


def _default_database_url() -> str:
    return f"sqlite:///{var_dir() / 'beatra.db'}"


N = TypeVar("N", int, float)


def _number(env: Mapping[str, str], var: str, kind: type[N], default: N) -> N:
    """An optional numeric variable; a malformed one stops start-up with its name."""
    text = env.get(var, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise SystemExit(f"{var} must be a number, not {text!r}") from None
    if value < 0:
        raise SystemExit(f"{var} must not be negative")
    return value


# Process-wide, read once at import (they size pools and pick ports before any app exists).
UPSTREAM_POOL_SIZE = _number(os.environ, "BEATRA_UPSTREAM_POOL", int, 1000)
DEV_PORT = _number(os.environ, "BEATRA_PORT", int, 8000)  # `make run`
DEV_SANDBOX_PORT = _number(os.environ, "BEATRA_SANDBOX_PORT", int, 8199)
# S3-compatible servers on an explicit endpoint (SeaweedFS, MinIO) want path-style URLs;
# boto3 reads the variable (and credentials) itself.
S3_CUSTOM_ENDPOINT = bool(os.environ.get("AWS_ENDPOINT_URL"))


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
    # How long an idle embedded runner thread waits for a message before checking for stop:
    # stopping the runner takes about two of these (tests shorten it).
    task_poll_seconds: float = 0.25
    # Webhooks (beatra.webhooks): seconds to wait before each retry; attempts = len + 1.
    # Default: 8 attempts over ~23 h. Tests shorten it (BEATRA_WEBHOOK_RETRY_SCHEDULE=0.2,0.2).
    webhook_retry_schedule: tuple[float, ...] = (30, 120, 600, 1800, 7200, 21600, 50400)
    # Idempotency-Key: responses are kept this long; an unfinished first request holds the key
    # for `idempotency_lease_seconds`, after which a retry may take it over (its worker died).
    idempotency_ttl_seconds: float = 24 * 3600
    idempotency_lease_seconds: float = 600.0
    # A concurrent-stream slot expires after this long even if its process died holding it.
    stream_slot_ttl_seconds: float = 900.0
    # A chat hold whose request's process died is settled by the sweeper after this long
    # without a lease renewal (beatra.billing.holds).
    hold_reap_seconds: float = 900.0
    # A key that passed is not looked up again for this long in the same process (revocations
    # made elsewhere take effect within it; beatra.accounts.keycache). 0: every request.
    key_cache_seconds: float = 1.0
    # `: ping` comment interval while an upstream stream is silent (also before its headers).
    sse_ping_seconds: float = 15.0
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
    db_pool_recycle: float = 1800.0
    # s3:// store: create the bucket at start-up when it is missing (else start-up stops).
    s3_create_bucket: bool = True
    # When set, GET /metrics requires `Authorization: Bearer <token>`.
    metrics_token: str = ""
    # Longest wait of a /openai/v1 images call for its task (BEATRA_OPENAI_WAIT_SECONDS, 0-120;
    # an app.config OPENAI_WAIT_SECONDS wins, see beatra.api.openai_compat).
    openai_wait_seconds: float = OPENAI_WAIT_MAX_SECONDS

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        values: dict[str, Any] = dict(
            database_url=env.get("DATABASE_URL") or _default_database_url(),
            redis_url=env.get("REDIS_URL") or None,
            catalog_path=env.get("BEATRA_CATALOG") or str(DEFAULT_CATALOG),
            storage_url=env.get("BEATRA_STORAGE_URL") or "file://./var/artifacts",
            public_url=(env.get("BEATRA_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            sandbox_url=(env.get("BEATRA_SANDBOX_URL") or DEFAULT_SANDBOX_URL).rstrip("/"),
            net_allowlist=env.get(NET_ALLOWLIST_ENV, ""),
            log_level=log_level(),
            secret_key=env.get("BEATRA_SECRET_KEY", ""),
            cors_origins=tuple(o.strip().rstrip("/") for o in
                               env.get("BEATRA_CORS_ORIGINS", "").split(",") if o.strip()),
            metrics_token=env.get("BEATRA_METRICS_TOKEN", ""),
            s3_create_bucket=_flag(env, "BEATRA_S3_CREATE_BUCKET", True),
            db_pool_pre_ping=_flag(env, "BEATRA_DB_POOL_PRE_PING", False),
            openai_wait_seconds=openai_wait_seconds(env.get(OPENAI_WAIT_ENV)
                                                    or OPENAI_WAIT_MAX_SECONDS),
        )
        values.update(_numbers(env))
        values.update(_webhook_env(env))
        return cls(**values)

    def catalog_env(self) -> dict[str, str]:
        """What the catalog's `${VAR}`s are filled from: the environment, with these settings'
        sandbox URL (so `create_app({"sandbox_url": …})` wins over BEATRA_SANDBOX_URL)."""
        return {**os.environ, "BEATRA_SANDBOX_URL": self.sandbox_url}


# Numeric settings: field → environment variable (the field's type is the number's type).
_NUMBERS = {
    "task_heartbeat_seconds": "BEATRA_TASK_HEARTBEAT_SECONDS",
    "task_lease_seconds": "BEATRA_TASK_LEASE_SECONDS",
    "task_sweep_seconds": "BEATRA_TASK_SWEEP_SECONDS",
    "task_requeue_seconds": "BEATRA_TASK_REQUEUE_SECONDS",
    "task_max_attempts": "BEATRA_TASK_MAX_ATTEMPTS",
    "task_worker_threads": "BEATRA_TASK_THREADS",
    "idempotency_lease_seconds": "BEATRA_IDEMPOTENCY_LEASE_SECONDS",
    "stream_slot_ttl_seconds": "BEATRA_STREAM_SLOT_TTL_SECONDS",
    "hold_reap_seconds": "BEATRA_HOLD_REAP_SECONDS",
    "key_cache_seconds": "BEATRA_KEY_CACHE_SECONDS",
    "sse_ping_seconds": "BEATRA_SSE_PING_SECONDS",
    "db_pool_size": "BEATRA_DB_POOL_SIZE",
    "db_max_overflow": "BEATRA_DB_MAX_OVERFLOW",
    "db_pool_timeout": "BEATRA_DB_POOL_TIMEOUT",
    "db_pool_recycle": "BEATRA_DB_POOL_RECYCLE",
}


def _numbers(env: Mapping[str, str]) -> dict[str, float | int]:
    """The numeric settings set in the environment (unset ones keep their defaults)."""
    defaults = Settings.__dataclass_fields__
    out: dict[str, float | int] = {}
    for name, var in _NUMBERS.items():
        default = defaults[name].default
        assert isinstance(default, int | float)
        out[name] = _number(env, var, type(default), default)
    return out


def _flag(env: Mapping[str, str], var: str, default: bool) -> bool:
    text = env.get(var, "").strip().lower()
    return default if not text else text not in ("0", "false", "no", "off")


def _webhook_env(env: Mapping[str, str]) -> dict[str, tuple[float, ...]]:
    out: dict[str, tuple[float, ...]] = {}
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
    return out


def settings_of(app: Flask) -> Settings:
    settings: Settings = app.extensions[SETTINGS_KEY]
    return settings


def current_settings() -> Settings:
    """The settings of the app handling this request or job."""
    return settings_of(current_app)


def normalise_database_url(url: str) -> str:
    """Heroku-style `postgres://` URLs → the psycopg 3 driver SQLAlchemy needs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
