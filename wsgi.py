"""WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py wsgi:app`."""

from beatra import create_app
from beatra.storage.service import prepare_store
from beatra.tasks.runtime import start_embedded_runner

app = create_app()
prepare_store(app)  # a missing S3 bucket: created, or the worker stops with one line
# Without REDIS_URL, tasks run inside each web worker (embedded mode); no-op with Redis.
start_embedded_runner(app)
