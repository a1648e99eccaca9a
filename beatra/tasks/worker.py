"""`dramatiq beatra.tasks.worker`: a worker process for Redis mode (the Procfile `worker:` line).

Importing this module builds the Flask app (so the actor has its app context, catalog and DB)
and installs the app's RedisBroker as Dramatiq's global broker. Dramatiq imports it in each
worker process it forks; the background loop (heartbeats + sweeper) starts with the Worker.
"""

from __future__ import annotations

import dramatiq

from beatra import create_app
from beatra.tasks.runtime import runtime_for

app = create_app()
runtime = runtime_for(app)
if runtime.embedded:
    raise SystemExit("REDIS_URL is not set: without it tasks run inside the web process "
                     "(embedded mode) and no separate worker is needed.")
dramatiq.set_broker(runtime.broker)
broker = runtime.broker
