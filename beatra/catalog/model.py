"""The loaded catalog: providers, models and their routes, prices."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Provider:
    name: str
    kind: str
    base_url: str
    api_key: str | None  # None: not configured → its routes cannot be served
    connect_timeout: float = 5.0
    read_timeout: float = 300.0

    @property
    def configured(self) -> bool:
        return bool(self.api_key)


@dataclass(frozen=True)
class Route:
    provider: Provider
    upstream_model: str


@dataclass(frozen=True, eq=False)  # identity hash: modules cache derived data per model
class Model:
    id: str
    capabilities: tuple[str, ...]
    routes: tuple[Route, ...]
    pricing: dict[str, Decimal]
    created: int
    features: frozenset[str] = frozenset()
    params: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)

    def has(self, capability: str) -> bool:
        return capability in self.capabilities


@dataclass(frozen=True)
class RateLimits:
    """Per-API-key defaults (a key's own setting wins); 0 means unlimited."""

    requests_per_minute: int = 0
    concurrent_streams: int = 0


@dataclass(frozen=True)
class Catalog:
    credits_per_usd: Decimal
    providers: dict[str, Provider]
    models: dict[str, Model]
    source: str = ""
    rate_limits: RateLimits = RateLimits()

    def model(self, model_id: str) -> Model | None:
        return self.models.get(model_id)

    def models_for(self, capability: str) -> list[Model]:
        return [m for m in self.models.values() if m.has(capability)]

    def usd(self, credits: Decimal) -> Decimal:
        return credits / self.credits_per_usd
