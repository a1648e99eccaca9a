"""Settings: the environment is read in one place; explicit create_app values win over it."""

from __future__ import annotations

import ast

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



def test_openai_wait_seconds_from_the_environment(monkeypatch):
    monkeypatch.setenv("BEATRA_OPENAI_WAIT_SECONDS", "7.5")
    assert Settings.from_env().openai_wait_seconds == 7.5
    monkeypatch.setenv("BEATRA_OPENAI_WAIT_SECONDS", "")
    assert Settings.from_env().openai_wait_seconds == 120.0


@pytest.mark.parametrize("value", ["soon", "121", "-1"])
def test_a_bad_openai_wait_names_its_variable(monkeypatch, value):
    monkeypatch.setenv("BEATRA_OPENAI_WAIT_SECONDS", value)
    with pytest.raises(SystemExit, match="BEATRA_OPENAI_WAIT_SECONDS"):
        Settings.from_env()

# --- beatra.config is the only reader of the process environment --------------------------

PACKAGE = PROJECT_DIR / "beatra"
ENV_NAMES = {"environ", "environb", "getenv", "getenvb"}


def _env_reads(source: str, filename: str = "<source>") -> list[int]:
    """Lines that read the process environment: any use of os.environ/os.getenv (or the names
    imported from os) except a write: `os.environ[k] = v`, `del os.environ[k]`,
    `os.environ.update(...)`. Reading through an alias (`env = os.environ`) counts as a read."""
    tree = ast.parse(source, filename)
    os_names = {"os"}
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
        if isinstance(node, ast.Import):
            os_names.update(a.asname or a.name for a in node.names if a.name == "os")
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(a.name in ENV_NAMES for a in node.names):
                lines.append(node.lineno)
            continue
        if not (isinstance(node, ast.Attribute) and node.attr in ENV_NAMES
                and isinstance(node.value, ast.Name) and node.value.id in os_names):
            continue
        parent = parents[node]
        if (isinstance(parent, ast.Subscript) and parent.value is node
                and isinstance(parent.ctx, ast.Store | ast.Del)):
            continue
        call = parents.get(parent)
        if (isinstance(parent, ast.Attribute) and parent.attr == "update"
                and isinstance(call, ast.Call) and call.func is parent):
            continue
        lines.append(node.lineno)
    return sorted(lines)


def test_the_env_read_finder_finds_reads_not_writes():
    source = """
import os
import os as o
from os import getenv
a = os.environ.get("A")
b = os.environ["B"]
c = o.getenv("C")
d = dict(os.environ)
e = "E" in os.environ
env = os.environ
os.environ["F"] = "1"
del os.environ["F"]
os.environ.update({"G": "1"})
os.putenv("H", "1")
"""
    assert _env_reads(source) == [4, 5, 6, 7, 8, 9, 10]


def test_only_config_reads_the_environment():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "config.py":
            continue
        rel = path.relative_to(PROJECT_DIR)
        found += [f"{rel}:{line}" for line in _env_reads(path.read_text(), str(path))]
    assert found == [], ("read the environment through beatra.config (a Settings field, or a "
                         f"function there for code that runs without an app): {found}")
