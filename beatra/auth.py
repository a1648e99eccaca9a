"""Bearer-key authentication for every route except the public ones."""

from __future__ import annotations

from flask import Flask, g, request

from beatra.accounts.caller import Caller
from beatra.accounts.service import authenticate
from beatra.config import current_settings
from beatra.errors import unauthorized

# Blueprints reachable without a key: health, the served OpenAPI document and its /docs page,
# signed content URLs, upstream callbacks (signed per task), the web console's shell and assets
# (no account data: the page calls the API with the key the user pastes), readiness and metrics
# (their own token; beatra.ops).
PUBLIC_BLUEPRINTS = frozenset({"health", "api-docs", "docs-page", "content", "callbacks",
                               "console", "ops"})


def current_caller() -> Caller:
    return g.caller


def _require_key() -> None:
    if request.endpoint is None or request.blueprint in PUBLIC_BLUEPRINTS:
        return  # unknown routes answer 404/405 whoever asks
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")
    caller = authenticate(token.strip(), current_settings().key_cache_seconds)
    if caller is None:
        raise unauthorized("Invalid, revoked or expired API key.")
    g.caller = caller


def init_auth(app: Flask) -> None:
    app.before_request(_require_key)
