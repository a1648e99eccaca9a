"""Whether this process runs under gevent, and how to let other greenlets run.

gunicorn's gevent worker patches the standard library before the app is imported; the CLI,
task workers and most tests run on plain threads. Code that picks a cheaper path under gevent
asks here, so the rule lives in one place.
"""

from __future__ import annotations

import sys


def under_gevent() -> bool:
    """Whether the socket module is patched by gevent (a gunicorn gevent worker, the sandbox)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))


def let_others_run() -> None:
    """Under gevent, one turn of the event loop: every greenlet that is ready runs until it
    blocks. A no-op on threads (they run anyway)."""
    if under_gevent():
        import gevent

        gevent.sleep(0)
