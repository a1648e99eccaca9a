"""Settings: the environment is read in one place; explicit create_app values win over it."""

from __future__ import annotations

import pytest

from beatra import create_app
from beatra.catalog.registry import EXTENSION_KEY as CATALOG_KEY
from beatra.config import PROJECT_DIR, Settings, settings_of


def test_create_app_values_win_over_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BEATRA_SANDBOX_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("BEATRA_TASK_MAX_ATTEMPTS", "7")
    app = create_app({"sandbox_url": "http://127.0.0.1:2",
                      "database_url": f"sqlite:///{tmp_path / 'x.db'}",
                      "catalog_path": str(PROJECT_DIR / "catalogs" / "sandbox.yaml")})
    settings = settings_of(app)
    assert settings.sandbox_url == "http://127.0.0.1:2"
    assert settings.task_max_attempts == 7  # not overridden: the environment's
    urls = {p.base_url for p in app.extensions[CATALOG_KEY].providers.values()}
    assert urls and all(u.startswith("http://127.0.0.1:2/") for u in urls)


@pytest.mark.parametrize("var", ["BEATRA_TASK_THREADS", "BEATRA_STREAM_SLOT_TTL_SECONDS"])
def test_a_malformed_number_names_its_variable(monkeypatch, var):
    monkeypatch.setenv(var, "ten")
    with pytest.raises(SystemExit, match=var):
        Settings.from_env()


def test_numbers_keep_their_type(monkeypatch):
    monkeypatch.setenv("BEATRA_TASK_THREADS", "3")
    monkeypatch.setenv("BEATRA_TASK_LEASE_SECONDS", "2.5")
    settings = Settings.from_env()
    assert (settings.task_worker_threads, settings.task_lease_seconds) == (3, 2.5)
    assert isinstance(settings.task_worker_threads, int)
