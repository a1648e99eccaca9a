"""gunicorn settings. Keep imports minimal: the gevent worker must patch before ssl/urllib3 load,
which is also why there is no preload_app."""

import os

bind = os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Each SSE stream holds one greenlet; 1,000+ concurrent streams per worker is the design point.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "2000"))
# With gevent the worker heartbeat is independent of request length, so minutes-long streams
# are not killed by this; it only catches a worker whose event loop is truly stuck.
timeout = 120
graceful_timeout = 60
keepalive = 75
preload_app = False
# gunicorn >= 25 opens a control socket (for `gunicornc`) at one path per user by default
# ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl), so every instance on a host
# would share it. beatra needs none: it is off unless GUNICORN_CONTROL_SOCKET names a path for
# this instance. (Older gunicorn ignores both names.)
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET")
if _control_socket:
    control_socket = _control_socket
control_socket_disable = not _control_socket
accesslog = None  # the app logs one JSON line per request with its request id
errorlog = "-"


def post_worker_init(worker):
    # 400/414/431 that gunicorn answers itself carry our error envelope (beatra.gunicorn_errors).
    from beatra.gunicorn_errors import install

    install(worker)
