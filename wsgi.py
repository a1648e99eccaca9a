"""WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py wsgi:app`."""

from beatra import create_app

app = create_app()
