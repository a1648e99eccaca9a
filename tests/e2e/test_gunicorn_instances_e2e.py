"""Several gunicorn instances on one host: none opens gunicorn's shared default control socket
(~/.gunicorn/gunicorn.ctl); one that asks for a control socket gets its own path."""

from __future__ import annotations

from pathlib import Path

import pytest
from gunicorn.config import Config

from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


def test_installed_gunicorn_knows_the_settings_we_use():
    settings = Config().settings
    assert "control_socket" in settings and "control_socket_disable" in settings


def test_two_instances_coexist_without_a_shared_control_socket(tmp_path: Path):
    home = tmp_path / "home"
    runtime = tmp_path / "run"
    home.mkdir()
    runtime.mkdir()
    own_socket = tmp_path / "b.ctl"
    common = {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    stacks = [Stack(tmp_path / "a", env=common),
              Stack(tmp_path / "b", env={**common, "GUNICORN_CONTROL_SOCKET": str(own_socket)})]
    try:
        for stack in stacks:
            stack.dir.mkdir()
            stack.migrate()
            stack.start_gateway()
        assert all(s.procs["gateway"].poll() is None for s in stacks)
        assert not (home / ".gunicorn").exists()
        assert not (runtime / "gunicorn.ctl").exists()
        assert own_socket.is_socket()
    finally:
        for stack in stacks:
            stack.stop()
