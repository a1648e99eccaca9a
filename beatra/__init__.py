"""beatra: multi-modal AI API gateway. `create_app` builds the Flask application."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from flask import Flask, Response
from sqlalchemy import event

from beatra.config import SETTINGS_KEY, Settings, normalise_database_url
from beatra.extensions import db, migrate, rest_api
from beatra.request_id import HEADER as REQUEST_ID_HEADER
from beatra.request_id import current_request_id


class BeatraFlask(Flask):
    """Flask, remembering which hooks and views are plain functions: Flask asks
    inspect.iscoroutinefunction for every hook of every request (two dozen per call here)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._checked: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        checked = self._checked.get(func)
        if checked is None:
            checked = self._checked[func] = super().ensure_sync(func)
        return checked


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app. `config` keys named like Settings fields override the environment;
    any other keys go to `app.config` as they are."""
    config = dict(config or {})
    settings = Settings.from_env()
    overrides = {f.name: config.pop(f.name) for f in fields(Settings) if f.name in config}
    settings = replace(settings, **overrides)

    app = BeatraFlask(__name__)
    app.config.update(_flask_config(settings))
    app.config.update(config)
    app.extensions[SETTINGS_KEY] = settings

    from beatra.logs import configure_logging

    configure_logging(settings.log_level)
    register_catalog(app, settings)
    register_extensions(app)
    register_blueprints(app)
    register_task_runtime(app, settings)
    register_errorhandlers(app)
    register_request_hooks(app)
    register_commands(app)
    return app


def _flask_config(settings: Settings) -> dict[str, Any]:
    url = normalise_database_url(settings.database_url)
    engine_options: dict[str, Any] = {}
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine_options["connect_args"] = {"check_same_thread": False, "timeout": 30}
    elif url.startswith("postgresql"):
        # Bounded on purpose (see Settings.db_pool_*): greenlets queue for a connection for at
        # most pool_timeout seconds, then the request answers 503 instead of opening more.
        engine_options.update(pool_size=settings.db_pool_size,
                              max_overflow=settings.db_max_overflow,
                              pool_timeout=settings.db_pool_timeout,
                              pool_pre_ping=settings.db_pool_pre_ping,
                              pool_recycle=settings.db_pool_recycle,
                              # An unreachable host fails in seconds (then 503), not minutes.
                              connect_args={"connect_timeout": 5})
    return {
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        "MAX_CONTENT_LENGTH": settings.max_json_body_bytes,
        "API_TITLE": "beatra API",
        "API_VERSION": "0.1.0",
        "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
    }


def register_catalog(app: Flask, settings: Settings) -> None:
    from beatra.catalog.loader import load_catalog
    from beatra.catalog.registry import EXTENSION_KEY

    app.extensions[EXTENSION_KEY] = load_catalog(settings.catalog_path, settings.catalog_env())


def register_extensions(app: Flask) -> None:
    import beatra.models  # noqa: F401  (every table on db.metadata)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    rest_api.DEFAULT_ERROR_RESPONSE_NAME = None  # our envelope is documented per operation
    rest_api.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL + NORMAL: concurrent readers with one writer, ~3x cheaper commits than FULL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    # Savepoints (beatra.groupcommit) keep their undo pages in memory, not in a temp file.
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def register_blueprints(app: Flask) -> None:
    from beatra.api.account.routes import blp as account_blp
    from beatra.api.catalog.routes import blp as catalog_blp
    from beatra.api.chat.routes import blp as chat_blp
    from beatra.api.chat.schemas import UNION_COMPONENTS
    from beatra.api.content.routes import blp as content_blp
    from beatra.api.health.routes import blp as health_blp
    from beatra.api.images.routes import blp as images_blp
    from beatra.api.media_inputs import MEDIA_INPUT_COMPONENTS
    from beatra.api.music.callbacks import blp as music_callbacks_blp
    from beatra.api.music.routes import blp as music_blp
    from beatra.api.openai_compat import register as register_openai_compat
    from beatra.api.tasks.routes import blp as tasks_blp
    from beatra.api.unions import component_name
    from beatra.api.uploads.routes import blp as uploads_blp
    from beatra.api.webhooks.routes import blp as webhooks_blp
    from beatra.console import blp as console_blp

    # Schemas referenced only from union fields must exist as components before use.
    if rest_api.document is None:
        for schema in (*UNION_COMPONENTS, *MEDIA_INPUT_COMPONENTS):
            rest_api.spec.components.schema(component_name(schema), schema=schema)
    for blp in (health_blp, catalog_blp, chat_blp, uploads_blp, content_blp, tasks_blp,
                images_blp, webhooks_blp, music_blp, music_callbacks_blp, account_blp):
        rest_api.register_blueprint(blp)
    register_openai_compat(app)
    from beatra.api.docs_page.routes import blp as docs_page_blp

    app.register_blueprint(docs_page_blp)  # HTML, not an API operation: not in the document
    app.register_blueprint(console_blp)  # not an API resource: absent from the OpenAPI document
    rest_api.document_built()


def register_task_runtime(app: Flask, settings: Settings) -> None:
    from beatra.runtime import build_runtime

    build_runtime(app, settings)


def register_errorhandlers(app: Flask) -> None:
    from beatra.errors import register_error_handlers

    register_error_handlers(app)


def register_request_hooks(app: Flask) -> None:
    from beatra.api.input_guard import init_body_guard, init_input_guard
    from beatra.auth import init_auth

    @app.before_request
    def _start() -> None:
        current_request_id()

    # Body size and header text, before auth or any parsing (beatra.api.input_guard).
    init_input_guard(app)
    from beatra.api.cors import init_cors

    init_cors(app, app.extensions["beatra.settings"].cors_origins)  # preflights skip auth
    init_auth(app)
    # After auth (they need the caller): rate limits first, so a limited request holds no key.
    from beatra.idempotency.hooks import init_idempotency
    from beatra.ratelimit.hooks import init_rate_limits

    init_rate_limits(app)
    init_body_guard(app)  # JSON/multipart checks, once the caller is known (input_guard)
    init_idempotency(app)

    @app.after_request
    def _finish(resp: Response) -> Response:
        resp.headers[REQUEST_ID_HEADER] = current_request_id()
        return resp

    from beatra.accesslog import init_access_log
    from beatra.ops import init_ops

    init_access_log(app)  # access lines + HTTP metrics, at the end of streamed responses too
    init_ops(app)  # GET /readyz and /metrics, outside the public contract


def register_commands(app: Flask) -> None:
    from beatra.cli import register

    register(app)
