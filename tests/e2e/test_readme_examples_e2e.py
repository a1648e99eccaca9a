"""The README's /openai/v1 examples run as printed (only the base URL `make run` uses is
pointed at this test's gateway): Python with the `openai` package, Node with the npm one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_service
from tests.e2e.procs import TaskStack
from tests.e2e.stack import running

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "e2e" / "node"
MAKE_RUN_URL = "http://127.0.0.1:8000"


def section_blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    start = text.index("## OpenAI SDKs: one base URL")
    section = text[start:text.index("\n## ", start + 1)]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[TaskStack]:
    yield from running(TaskStack(tmp_path_factory.mktemp("readme"), threads=4))


def _env(stack: TaskStack) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(stack.dir),
            "BEATRA_API_KEY": stack.new_account("100").key}


def test_python_example_runs_as_printed(stack: TaskStack, tmp_path: Path):
    (code,) = section_blocks("python")
    assert MAKE_RUN_URL in code
    script = tmp_path / "example.py"
    script.write_text(code.replace(MAKE_RUN_URL, stack.url))
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(stack),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"{stack.url}/v1/content/")
    assert lines[1].split()[1].startswith("task_")
    assert lines[2].startswith(f"{stack.url}/v1/content/")
    assert lines[3].startswith("504 task_pending task_")
    assert lines[4]  # the chat reply


def test_node_example_runs_as_printed(stack: TaskStack, tmp_path: Path):
    installed = (NODE_DIR / "node_modules" / "openai").is_dir()
    need_service("node + the openai npm package", bool(shutil.which("node")) and installed,
                 "run `npm ci --prefix tests/e2e/node`")
    (code,) = section_blocks("js")
    assert MAKE_RUN_URL in code
    (tmp_path / "node_modules").symlink_to(NODE_DIR / "node_modules")
    script = tmp_path / "kites.mjs"
    script.write_text(code.replace(MAKE_RUN_URL, stack.url))
    out = subprocess.run(["node", str(script)], cwd=tmp_path, env=_env(stack),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    url, credits, task_id = out.stdout.splitlines()[0].split()
    assert url.startswith(f"{stack.url}/v1/content/") and task_id.startswith("task_")
    assert float(credits) > 0
    assert "gpt-image-2" in out.stdout.splitlines()[1].split()
