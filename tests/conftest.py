"""Shared fixtures. Default backend: SQLite in a temp dir, migrated once per session and copied
per test. Set BEATRA_TEST_DATABASE_URL=postgresql://… to run the same suite on Postgres: it drops
and recreates that database's `public` schema, so it must be a database whose name ends in
`test` (BEATRA_TEST_DATABASE_FORCE=1 overrides that check)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text

from beatra import create_app
from beatra.extensions import db

TESTS = Path(__file__).resolve().parent
TEST_CATALOG = TESTS / "catalogs" / "test.yaml"
PG_URL = os.environ.get("BEATRA_TEST_DATABASE_URL")
REQUIRE_SERVICES = os.environ.get("BEATRA_REQUIRE_SERVICES") == "1"
FORCE_DATABASE_ENV = "BEATRA_TEST_DATABASE_FORCE"


def refuse_database(url: str, force: bool) -> str | None:
    """Why the suite must not wipe the database `url` names (None: it may). Only a database
    whose name says it is for tests (ends in `test`: `test`, `beatra_test`, …) is wiped."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database or ""
    if force or name.lower().endswith("test"):
        return None
    return (f"BEATRA_TEST_DATABASE_URL names database {name!r}: the test suite runs DROP SCHEMA "
            f"public CASCADE on it, so it only uses a database whose name ends in 'test'. "
            f"Use one (e.g. createdb beatra_test), or set {FORCE_DATABASE_ENV}=1 if this one "
            "really is disposable.")


E2E_TIMEOUT_SECONDS = 300  # real processes (gunicorn, workers, the sandbox) or SeaweedFS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        slow = item.get_closest_marker("e2e") or item.get_closest_marker("services")
        if slow and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT_SECONDS))


def need_service(name: str, available: bool, why: str = "") -> None:
    """Skip when a backing server is missing, unless CI says it must be there."""
    if available:
        return
    message = f"{name} not available{': ' + why if why else ''}"
    if REQUIRE_SERVICES:
        pytest.fail(f"BEATRA_REQUIRE_SERVICES=1 but {message}")
    pytest.skip(message)


def _migrate(app: Flask) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:
        refusal = refuse_database(PG_URL, os.environ.get(FORCE_DATABASE_ENV) == "1")
        if refusal:
            pytest.exit(refusal, returncode=4)
        app = create_app({"database_url": PG_URL, "catalog_path": str(TEST_CATALOG)})
        with app.app_context():
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
            db.engine.dispose()
        _migrate(app)
        with app.app_context():
            db.engine.dispose()
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    app = create_app({"database_url": f"sqlite:///{path}", "catalog_path": str(TEST_CATALOG)})
    _migrate(app)
    with app.app_context():
        db.engine.dispose()
    return str(path)


def database_url(template: str, tmp_path: Path) -> str:
    if PG_URL:
        return PG_URL
    target = tmp_path / "beatra.db"
    shutil.copy(template, target)
    return f"sqlite:///{target}"


def _truncate_all() -> None:
    names = ", ".join(t.name for t in db.metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.session.commit()


@pytest.fixture
def make_app(_template_db: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def factory(**overrides: object) -> Flask:
        config: dict[str, object] = {
            "database_url": database_url(_template_db, tmp_path),
            "catalog_path": str(TEST_CATALOG),
            "storage_url": f"file://{tmp_path / 'artifacts'}",
            "public_url": "http://beatra.test",
            # a stopped embedded runner is gone in ~40 ms instead of ~0.5 s
            "task_poll_seconds": 0.02,
            "TESTING": True,
        }
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield factory
    from beatra.tasks.runtime import stop_all

    stop_all()  # task runner threads an app started must not outlive its test
    for app in apps:
        with app.app_context():
            if PG_URL:
                _truncate_all()
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@dataclass
class ApiAccount:
    account_id: str
    api_key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
def make_account(app: Flask) -> Callable[..., ApiAccount]:
    from beatra.accounts import service

    def factory(credits: str = "100", name: str = "test") -> ApiAccount:
        with app.app_context():
            account = service.create_account(name, Decimal(credits))
            key, secret = service.create_key(account.id)
            return ApiAccount(account.id, secret, key.id)

    return factory


@pytest.fixture
def account(make_account: Callable[..., ApiAccount]) -> ApiAccount:
    return make_account()


@pytest.fixture
def ledger_ok(app: Flask) -> Iterator[None]:
    """Use in tests that move money: asserts balance == sum(ledger) for all wallets at the end,
    and that no hold outlived its work: no chat hold open (each call settled exactly once) and
    no task hold open once its task ended (a queued task's hold stays, rightly)."""
    yield
    from beatra.billing import wallet

    with app.app_context():
        bad = [a for a in wallet.audit_all() if not a.ok]
        bad += [k for k in wallet.key_audits() if not k.ok]  # key spent/held == its ledger
        held = [(h.id, h.kind, h.ref) for h in wallet.open_holds() if h.kind != "task"]
        held += wallet.ended_task_holds()
    assert not bad, f"ledger mismatch: {bad}"
    assert not held, f"open holds left behind: {held}"


@pytest.fixture(autouse=True)
def _fresh_key_cache() -> Iterator[None]:
    """Checked keys are remembered per process (beatra.accounts.keycache); no test inherits
    another's."""
    from beatra.accounts import keycache

    keycache.clear()
    yield
    keycache.clear()


@pytest.fixture(autouse=True)
def _fresh_circuits() -> Iterator[None]:
    """Circuit breaker state is per process; no test inherits another's open circuits."""
    from beatra.catalog.circuits import breaker

    breaker.reset()
    yield
    breaker.reset()
