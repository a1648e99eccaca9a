"""`dramatiq beatra.tasks.worker`: a worker process for Redis mode (the Procfile `worker:` line
runs it as `python -m beatra.tasks`, which adds JSON logs for Dramatiq's parent process).

Importing this module builds the Flask app (so the actor has its app context, catalog and DB)
and installs the app's RedisBroker as Dramatiq's global broker. Dramatiq imports it in each
worker process it forks; the background loop (heartbeats + sweeper) starts with the Worker.
"""

from __future__ import annotations

import logging
import sys

import dramatiq
from dramatiq.cli import LOGFORMAT

from beatra import create_app
from beatra.logs import JsonFormatter
from beatra.storage.service import prepare_store
from beatra.tasks.runtime import runtime_for

# One JSON handler on the root, writing to the pipe the Dramatiq parent prints (sys.stderr is
# that pipe here), whichever way the workers were started:
# - `python -m beatra.tasks` forked us with its JSON handler on the parent's stderr: re-point it;
# - plain `dramatiq` (without --skip-logging) added a text handler: make it write JSON instead of
#   adding ours beside it (every line twice).
for _handler in logging.getLogger().handlers:
    if not isinstance(_handler, logging.StreamHandler):
        continue
    if isinstance(_handler.formatter, JsonFormatter):
        _handler.setStream(sys.stderr)
    elif _handler.formatter is not None and _handler.formatter._fmt == LOGFORMAT:
        _handler.setFormatter(JsonFormatter())

app = create_app()
prepare_store(app)
runtime = runtime_for(app)
if runtime.embedded:
    raise SystemExit("REDIS_URL is not set: without it tasks run inside the web process "
                     "(embedded mode) and no separate worker is needed.")
dramatiq.set_broker(runtime.broker)
broker = runtime.broker
