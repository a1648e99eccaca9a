"""The app's loaded catalog and which of its models can be served right now."""

from __future__ import annotations

from collections.abc import Iterable

from flask import current_app

from beatra.catalog.circuits import breaker
from beatra.catalog.model import Catalog, Model, Route
from beatra.errors import ApiError

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


NO_UPSTREAM = "Model '{name}' has no upstream available right now."
NOT_OFFERED = "Model '{name}' is not offered by this deployment."


def model_unavailable(model: Model | None, *, name: str | None = None,
                      message: str = NO_UPSTREAM, among: Iterable[Model] | None = None,
                      with_retry_after: bool = True) -> ApiError:
    """503 `model_unavailable` for `model` (or, with `model=None`, for the `name` asked for).

    `message` is formatted with `name` (default: the model's id). The error is retryable when
    one of `among` (default: the model itself) has a configured provider key: an open circuit
    closes by itself, a missing key will not. With `with_retry_after`, a retryable error also
    carries Retry-After: the seconds until the first of those models may be tried (else 1).
    """
    models = list(among) if among is not None else [model] if model is not None else []
    configured = any(r.provider.configured for m in models for r in m.routes)
    headers = None
    if with_retry_after and configured:
        waits = [w for m in models if (w := retry_after(m)) is not None]
        headers = {"Retry-After": str(min(waits) if waits else 1)}
    label = name or (model.id if model is not None else "")
    return ApiError(503, "model_unavailable", message.format(name=label),
                    retryable=configured, headers=headers)
