"""The app's loaded catalog and which of its models can be served right now."""

from __future__ import annotations

from flask import current_app

from beatra.catalog.circuits import breaker
from beatra.catalog.model import Catalog, Model, Route

EXTENSION_KEY = "beatra.catalog"


def current_catalog() -> Catalog:
    return current_app.extensions[EXTENSION_KEY]


def usable_routes(model: Model) -> list[Route]:
    """Routes in catalog order whose provider has a key and whose circuit is not open (a
    half-open route is listed; `breaker.admit` decides at call time who probes it)."""
    return [r for r in model.routes if r.provider.configured and not breaker.is_open(r)]


def servable(model: Model) -> bool:
    return bool(usable_routes(model))


def servable_models(catalog: Catalog) -> list[Model]:
    return [m for m in catalog.models.values() if servable(m)]


def retry_after(model: Model) -> int | None:
    """Seconds until one of the model's open routes may be tried again (for Retry-After)."""
    waits = [w for r in model.routes if r.provider.configured
             if (w := breaker.retry_after(r)) is not None]
    return min(waits) if waits else None
