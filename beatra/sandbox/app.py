"""Flask factory for the sandbox upstream: every provider under its own path prefix."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from . import chat, images, minimax, suno
from .common import json_response, openai_error


def create_sandbox_app() -> Flask:
    app = Flask("beatra.sandbox")
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024 * 1024  # 16 edit images at 16 MB each
    for bp in (chat.bp, images.bp, minimax.bp, suno.bp):
        app.register_blueprint(bp)

    @app.get("/health")
    def health() -> Response:
        return json_response({"ok": True})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        # JSON like OpenAI's "Invalid URL" errors, so clients never have to parse HTML.
        status = exc.code or 500
        message = f"Invalid URL ({request.method} {request.path})" if status in (404, 405) \
            else exc.description or exc.name
        return openai_error(status, message, "invalid_request_error")

    return app
