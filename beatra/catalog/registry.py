"""The app's loaded catalog and which of its models can be served right now."""

from __future__ import annotations

from flask import current_app

from beatra.catalog.model import Catalog, Model

EXTENSION_KEY = "beatra.catalog"


def current_catalog() -> Catalog:
    return current_app.extensions[EXTENSION_KEY]


def servable(model: Model) -> bool:
    """A model is listed and routable while at least one of its routes has a configured key."""
    return any(route.provider.configured for route in model.routes)


def servable_models(catalog: Catalog) -> list[Model]:
    return [m for m in catalog.models.values() if servable(m)]
