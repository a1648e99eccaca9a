"""What a running `make run` (beatra.devserver) applied, for operator commands run beside it.

`make run` allowlists 127.0.0.1 for server-side fetches (BEATRA_NET_ALLOWLIST) so a local
webhook receiver works through the API; a `flask --app beatra webhooks set` typed in another
shell does not inherit that environment. The devserver records the allowlist in
`<var dir>/devserver.json` while it runs, and the CLI applies it when its own environment
does not set one, so both accept the same URLs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from beatra.config import NET_ALLOWLIST_ENV, var_dir

ALLOWLIST_ENV = NET_ALLOWLIST_ENV


def state_file() -> Path:
    return var_dir() / "devserver.json"


def record(allowlist: str) -> None:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps({"pid": os.getpid(), "net_allowlist": allowlist}))


def forget() -> None:
    state_file().unlink(missing_ok=True)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def running_allowlist() -> str | None:
    """The allowlist of a `make run` that is running now (a stale file is ignored)."""
    try:
        data = orjson.loads(state_file().read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not _alive(data.get("pid")):
        return None
    allowlist = data.get("net_allowlist")
    return allowlist if isinstance(allowlist, str) else None
