"""The OpenAI-compatible surface under /openai/v1: one `base_url` for an OpenAI SDK user.

- images/generations and images/edits: synchronous, built on image tasks (routes.py);
- chat/completions and models: the contract's own views, registered a second time.

`register(app)` is called once from the app factory, after the contract's blueprints.
"""

from __future__ import annotations

import copy

from flask import Flask

from beatra.api.openai_compat.waiting import WAIT_SETTING
from beatra.config import openai_wait_seconds, settings_of
from beatra.extensions import rest_api

PREFIX = "/openai/v1"
# (contract path, view endpoint, method) served again under PREFIX.
ALIASES = (("/v1/chat/completions", "chat.chat_completions", "post"),
           ("/v1/models", "catalog.list_models", "get"))


def _wait_seconds(app: Flask) -> float:
    """app.config's OPENAI_WAIT_SECONDS when given, else the settings' (the environment's)."""
    return openai_wait_seconds(app.config.get(WAIT_SETTING,
                                              settings_of(app).openai_wait_seconds))


def _alias(app: Flask, path: str, endpoint: str, method: str) -> None:
    """Serve an existing view at PREFIX + path (minus /v1) and document it there, with its own
    operationId (operationIds are unique in a document)."""
    new_path = PREFIX + path.removeprefix("/v1")
    new_endpoint = f"openai_compat.{endpoint}"
    app.add_url_rule(new_path, endpoint=new_endpoint, view_func=app.view_functions[endpoint],
                     methods=[method.upper()])
    operation = copy.deepcopy(rest_api.spec._paths[path][method])
    operation["operationId"] = f"openai_compat_{operation['operationId']}"
    operation["tags"] = ["openai_compat"]
    rule = next(app.url_map.iter_rules(new_endpoint))
    rest_api.spec.path(rule=rule, operations={method: operation})


def register(app: Flask) -> None:
    from beatra.api.openai_compat.routes import blp

    app.config[WAIT_SETTING] = _wait_seconds(app)
    rest_api.register_blueprint(blp)
    for path, endpoint, method in ALIASES:
        _alias(app, path, endpoint, method)
