"""The README names only things that exist: repository paths, `make` targets, `python -m` and
`dramatiq` modules, `flask --app beatra` commands with their options, and BEATRA_* settings the
code reads. A README that points at a file, a command or an option that is not there fails."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# Created at run time, not in the repository.
RUNTIME_PATHS = ("var/", ".venv/", "bench/results")
# Named by the README's examples for the reader to set; no code reads them.
EXAMPLE_SETTINGS = {"BEATRA_API_KEY"}
FILE_SUFFIXES = (".py", ".yaml", ".yml", ".toml", ".json", ".mjs", ".md", ".txt")


def _blocks() -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", README, re.S)


def _inline() -> list[str]:
    return re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))


def _repo_paths() -> set[str]:
    """Tokens that name a path inside the repository: anything starting with one of its
    top-level entries (`tests/…`, `catalogs/…`, `.ci/run`), and in inline code a bare file
    name with a known suffix (`gunicorn.conf.py`). Example files a reader creates (in code
    blocks) and runtime directories are not paths of the repository."""
    top = {p.name for p in ROOT.iterdir()} - {"var", ".venv"}
    found = set()
    for span, inline in [*((b, False) for b in _blocks()), *((i, True) for i in _inline())]:
        for token in re.findall(r"[\w./-]+", span):
            token = token.rstrip(".,:")
            if token.startswith(RUNTIME_PATHS):
                continue
            in_repo = "/" in token and token.split("/")[0] in top
            file_name = (inline and "/" not in token and token.endswith(FILE_SUFFIXES)
                         and not token.startswith("."))
            if in_repo or file_name:
                found.add(token)
    return found


def test_no_path_outside_the_repository():
    assert "../shared" not in README
    assert "tests/contract/beatra-openapi.yaml" in README


@pytest.mark.parametrize("path", sorted(_repo_paths()))
def test_named_path_exists(path: str):
    if "/" not in path:  # a bare file name: somewhere in the repository
        hits = [p for p in ROOT.rglob(path) if not set(p.parts) & {".venv", "node_modules"}]
        assert hits, f"README names {path}, which is not in the repository"
        return
    assert (ROOT / path).exists(), f"README names {path}, which does not exist"


def test_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", README))
    assert named, "the README names no make target?"
    assert named <= targets, f"unknown make targets: {sorted(named - targets)}"


def test_python_modules_exist():
    modules = set(re.findall(r"python -m ([\w.]+)", README))
    modules |= set(re.findall(r"dramatiq ([\w.]+)", README))
    modules -= {"pytest"}
    assert modules
    missing = [m for m in sorted(modules) if importlib.util.find_spec(m) is None]
    assert not missing, f"README runs modules that do not exist: {missing}"


def test_flask_commands_and_options_exist(app):
    lines = [line for span in [*_blocks(), *_inline()] for line in span.splitlines()
             if "flask --app beatra " in line]
    assert len(lines) >= 10
    ctx = click.Context(app.cli)
    for line in lines:
        words = line.split("flask --app beatra ", 1)[1].split("#")[0].split()
        group = app.cli.get_command(ctx, words[0])
        assert isinstance(group, click.Group), f"no command group {words[0]!r}: {line}"
        command = group.get_command(ctx, words[1])
        assert command is not None, f"no command {words[0]} {words[1]!r}: {line}"
        known = {opt for param in command.params for opt in param.opts}
        named = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", " ".join(words[2:])))
        assert named <= known, f"{words[0]} {words[1]}: unknown {sorted(named - known)}"


def test_settings_named_are_read_by_the_code():
    sources = "\n".join(p.read_text() for p in [*ROOT.joinpath("beatra").rglob("*.py"),
                                                 ROOT / "gunicorn.conf.py"])
    named = set(re.findall(r"\b(BEATRA_[A-Z_]*[A-Z]|GUNICORN_[A-Z_]*[A-Z])\b", README))
    test_only = {n for n in named if n.startswith(("BEATRA_TEST_", "BEATRA_FUZZ_"))} | {
        "BEATRA_REQUIRE_SERVICES"}
    tests = "\n".join(p.read_text() for p in ROOT.joinpath("tests").rglob("*.py"))
    missing = sorted(n for n in named - test_only - EXAMPLE_SETTINGS if n not in sources)
    missing += sorted(n for n in test_only if n not in tests)
    assert not missing, f"README names settings nothing reads: {missing}"
