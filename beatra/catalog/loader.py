"""Load and validate a catalog YAML file. A broken catalog stops start-up with a clear message."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from beatra.billing.money import parse_credits
from beatra.catalog.capabilities import CAPABILITIES
from beatra.catalog.model import Catalog, Model, Provider, RateLimits, Route
from beatra.chat.policy import ChatPolicy

PROVIDER_KINDS = ("openai", "minimax", "sunoapi")
FEATURES = (
    "tools", "vision", "audio_input", "audio_output", "json_schema", "json_object",
    "reasoning", "logprobs",
)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


class CatalogError(Exception):
    pass


class _Credits(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, float):
            raise ValidationError("write prices as quoted strings, not floats")
        try:
            amount = parse_credits(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        if amount < 0:
            raise ValidationError("must not be negative")
        return amount


class _ProviderSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(PROVIDER_KINDS))
    base_url = fields.String(required=True, validate=validate.Regexp(r"^https?://"))
    api_key_env = fields.String()
    api_key = fields.String()
    connect_timeout = fields.Float(load_default=5.0, validate=validate.Range(min=0.1))
    read_timeout = fields.Float(load_default=300.0, validate=validate.Range(min=1))


class _RouteSchema(Schema):
    provider = fields.String(required=True)
    upstream_model = fields.String(required=True)


class _ModelSchema(Schema):
    id = fields.String(required=True, validate=validate.Regexp(_MODEL_ID))
    capabilities = fields.List(
        fields.String(validate=validate.OneOf(list(CAPABILITIES))),
        required=True, validate=validate.Length(min=1),
    )
    routes = fields.List(fields.Nested(_RouteSchema), required=True,
                         validate=validate.Length(min=1))
    pricing = fields.Dict(keys=fields.String(), values=_Credits(), required=True)
    created = fields.Integer(load_default=None)
    features = fields.List(fields.String(validate=validate.OneOf(FEATURES)), load_default=list)
    params = fields.Dict(load_default=dict)
    limits = fields.Dict(load_default=dict)


class _RateLimitsSchema(Schema):
    requests_per_minute = fields.Integer(load_default=0, validate=validate.Range(min=0))
    concurrent_streams = fields.Integer(load_default=0, validate=validate.Range(min=0))


class _CatalogSchema(Schema):
    credits_per_usd = _Credits(required=True)
    rate_limits = fields.Nested(_RateLimitsSchema, load_default=None)
    providers = fields.Dict(keys=fields.String(), values=fields.Nested(_ProviderSchema),
                            required=True)
    models = fields.List(fields.Nested(_ModelSchema), required=True)

    @validates_schema
    def _references(self, data: dict[str, Any], **_: Any) -> None:
        if data["credits_per_usd"] <= 0:
            raise ValidationError("must be positive", "credits_per_usd")
        seen: set[str] = set()
        for i, model in enumerate(data["models"]):
            if model["id"] in seen:
                raise ValidationError(f"duplicate model id {model['id']!r}", f"models.{i}.id")
            seen.add(model["id"])
            if "chat.completions" in model["capabilities"]:
                try:
                    ChatPolicy.from_params(model["params"])
                except ValueError as exc:
                    raise ValidationError(str(exc), f"models.{i}.params") from None
            for j, route in enumerate(model["routes"]):
                provider = data["providers"].get(route["provider"])
                if provider is None:
                    raise ValidationError(
                        f"unknown provider {route['provider']!r}",
                        f"models.{i}.routes.{j}.provider",
                    )
                for cap in model["capabilities"]:
                    if provider["kind"] not in CAPABILITIES[cap].provider_kinds:
                        raise ValidationError(
                            f"provider kind {provider['kind']!r} cannot serve {cap}",
                            f"models.{i}.routes.{j}.provider",
                        )


def _interpolate(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise CatalogError(f"{path or 'value'}: environment variable {name} is not set")
            return env[name]
        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [_interpolate(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _interpolate(v, env, f"{path}.{k}" if path else str(k))
                for k, v in value.items()}
    return value


def _first_error(messages: Any, path: str = "") -> str:
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        key = str(key)
        if key == "_schema":
            return _first_error(value, path)
        sub = f"{path}[{key}]" if key.isdigit() else (f"{path}.{key}" if path else key)
        return _first_error(value, sub)
    if isinstance(messages, list):
        return _first_error(messages[0], path)
    return f"{path}: {messages}"


def _build(data: dict[str, Any], env: Mapping[str, str], source: str, created: int) -> Catalog:
    providers: dict[str, Provider] = {}
    for name, spec in data["providers"].items():
        key = spec.get("api_key") or env.get(spec.get("api_key_env", "")) or None
        providers[name] = Provider(
            name=name, kind=spec["kind"], base_url=spec["base_url"].rstrip("/"), api_key=key,
            connect_timeout=spec["connect_timeout"], read_timeout=spec["read_timeout"],
        )
    models = {}
    for spec in data["models"]:
        models[spec["id"]] = Model(
            id=spec["id"],
            capabilities=tuple(spec["capabilities"]),
            routes=tuple(Route(providers[r["provider"]], r["upstream_model"])
                         for r in spec["routes"]),
            pricing=dict(spec["pricing"]),
            created=spec["created"] if spec["created"] is not None else created,
            features=frozenset(spec["features"]),
            params=dict(spec["params"]),
            limits=dict(spec["limits"]),
        )
    limits = data.get("rate_limits") or {}
    return Catalog(credits_per_usd=data["credits_per_usd"], providers=providers, models=models,
                   source=source, rate_limits=RateLimits(**limits))


# libyaml's parser when PyYAML was built with it (the wheels are): ~10x faster, same safe subset.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_catalog(path: str | Path, env: Mapping[str, str]) -> Catalog:
    """Parse, interpolate `${VAR}`s and validate; raises CatalogError with a one-line reason."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=_YAML_LOADER)
    except OSError as exc:
        raise CatalogError(f"cannot read catalog {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"catalog {path} must be a mapping at the top level")
    try:
        data = _CatalogSchema().load(_interpolate(raw, env))
    except CatalogError as exc:
        raise CatalogError(f"catalog {path}: {exc}") from exc
    except ValidationError as exc:
        raise CatalogError(f"catalog {path}: {_first_error(exc.messages)}") from exc
    return _build(data, env, str(path), int(path.stat().st_mtime))
