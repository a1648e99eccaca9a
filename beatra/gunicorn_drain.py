"""A stopping gunicorn gevent worker closes its idle keep-alive connections at once.

On SIGTERM (a deploy, a scale-down, `kill`) gunicorn's gevent worker stops accepting and then
waits until every connection's greenlet has ended, up to `graceful_timeout`. A kept-alive
connection with no request on it is such a greenlet: it sits waiting for the client's next
request for up to `keepalive` seconds, so one idle client (an SDK's connection pool, a load
balancer) holds the worker for the whole graceful timeout, and the platform's SIGKILL then
cuts the streams the grace period was for. `install()` (from gunicorn.conf.py's
`post_worker_init`, inside a worker only) ends those waits as soon as the worker stops: each
idle connection is closed, exactly as when its keep-alive timeout expires, while requests
and SSE streams in flight finish normally and their connections close after the response
(gunicorn sends `Connection: close` once the worker is stopping). A connection that becomes
idle after that point gets a last, short wait and is closed too. This is what nginx does on
a graceful stop; a client whose next request meets the closed connection retries it on a new
one.
"""

from __future__ import annotations

from typing import Any

# How often the watcher looks at `worker.alive` (gunicorn's own loop looks once a second).
_POLL_SECONDS = 0.2
# The wait for a request on a connection that became idle after the worker began stopping.
_LAST_WAIT_SECONDS = 0.5


def install(worker: Any) -> None:
    import gevent

    # Greenlet -> the Timeout guarding its wait for the next request on its connection.
    idle: dict[Any, gevent.Timeout] = {}
    keepalive = worker.cfg.keepalive

    class _WaitForRequest:
        """gunicorn's keep-alive wait (`with worker.timeout_ctx(): req = next(parser)`),
        registered so that the watcher can end it. The Timeout is created with exception=False:
        when it fires (here or at `keepalive`), the `with` block is left silently, no request
        is read, and gunicorn closes the connection."""

        def __enter__(self) -> None:
            self.timeout = gevent.Timeout(
                keepalive if worker.alive else _LAST_WAIT_SECONDS, False)
            self.timeout.start()
            idle[gevent.getcurrent()] = self.timeout

        def __exit__(self, *exc: object) -> bool | None:
            idle.pop(gevent.getcurrent(), None)
            return self.timeout.__exit__(*exc)

    def close_idle_when_stopping() -> None:
        while worker.alive:
            gevent.sleep(_POLL_SECONDS)
        for waiter, timeout in list(idle.items()):
            # Raised inside the waiting greenlet, the Timeout is the one its `with` swallows.
            gevent.kill(waiter, timeout)

    worker.timeout_ctx = _WaitForRequest
    gevent.spawn(close_idle_when_stopping)
