"""One pooled HTTP session per process for upstream calls.

trust_env=False: no proxy/netrc lookups per request (measurably cheaper on the hot path, and
upstream traffic should never silently follow an ambient proxy). The pool is sized for many
concurrent greenlets, not CPU cores.
"""

from __future__ import annotations

import os
import threading

import requests
from requests.adapters import HTTPAdapter

POOL_SIZE = int(os.environ.get("BEATRA_UPSTREAM_POOL", "1000"))

_lock = threading.Lock()
_session: requests.Session | None = None
_pid: int | None = None


def upstream_session() -> requests.Session:
    global _session, _pid
    if _session is None or _pid != os.getpid():  # never share sockets across a fork
        with _lock:
            if _session is None or _pid != os.getpid():
                session = requests.Session()
                session.trust_env = False
                adapter = HTTPAdapter(pool_connections=64, pool_maxsize=POOL_SIZE, max_retries=0)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                _session, _pid = session, os.getpid()
    return _session
