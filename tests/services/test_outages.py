"""Outages answer 503 `service_unavailable` (retryable, Retry-After), never 500, and the process
recovers by itself: against a throwaway Postgres this test stops and starts."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask

from beatra import create_app
from beatra.extensions import db
from tests.conftest import TEST_CATALOG, need_service
from tests.services.throwaway import ThrowawayPostgres, postgres_available

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def pg() -> Iterator[ThrowawayPostgres]:
    need_service("postgres binaries", postgres_available(), "/usr/lib/postgresql/*/bin")
    server = ThrowawayPostgres()
    server.start()
    migrated = create_app({"database_url": server.url, "catalog_path": str(TEST_CATALOG)})
    from flask_migrate import upgrade

    with migrated.app_context():
        upgrade()
        db.engine.dispose()
    try:
        yield server
    finally:
        server.destroy()


def _app(pg: ThrowawayPostgres, tmp_path: Path, **overrides: object) -> Flask:
    return create_app({"database_url": pg.url, "catalog_path": str(TEST_CATALOG),
                       "storage_url": f"file://{tmp_path / 'artifacts'}", "TESTING": True,
                       **overrides})


def _key(app: Flask) -> dict[str, str]:
    from beatra.accounts import service

    with app.app_context():
        account = service.create_account("outage", Decimal("10"))
        _, secret = service.create_key(account.id)
    return {"Authorization": f"Bearer {secret}"}


def _assert_503(resp) -> None:
    assert resp.status_code == 503, resp.get_data(as_text=True)
    err = resp.get_json()["error"]
    assert err["code"] == "service_unavailable"
    assert err["retryable"] is True
    assert err["request_id"] == resp.headers["X-Request-Id"]
    assert int(resp.headers["Retry-After"]) > 0


def test_stopped_database_answers_503_and_recovers(pg: ThrowawayPostgres,
                                                   tmp_path: Path) -> None:
    app = _app(pg, tmp_path)
    client = app.test_client()
    headers = _key(app)
    assert client.get("/v1/tasks", headers=headers).status_code == 200

    pg.stop()
    try:
        # Pooled connections die with the server; both the broken one and a fresh connect
        # attempt (refused) must be 503s.
        _assert_503(client.get("/v1/tasks", headers=headers))
        _assert_503(client.get("/v1/tasks", headers=headers))
    finally:
        pg.start()

    # No restart of the app: the pool reconnects on its own.
    assert client.get("/v1/tasks", headers=headers).status_code == 200
    with app.app_context():
        db.engine.dispose()


def test_pool_wait_timeout_answers_503(pg: ThrowawayPostgres, tmp_path: Path) -> None:
    app = _app(pg, tmp_path, db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.2)
    client = app.test_client()
    headers = _key(app)
    with app.app_context():
        held = db.engine.connect()  # the only connection the pool may hand out
        try:
            _assert_503(client.get("/v1/tasks", headers=headers))
        finally:
            held.close()
        assert client.get("/v1/tasks", headers=headers).status_code == 200
        db.engine.dispose()
