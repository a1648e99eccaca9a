"""Which catalog model serves a request: the named one, or for model="auto" the cheapest
servable model with every feature the request needs."""

from __future__ import annotations

from typing import Any

from beatra.catalog.model import Catalog, Model
from beatra.catalog.registry import model_unavailable, servable
from beatra.chat.pricing import prices_for
from beatra.errors import invalid

__all__ = ["AUTO", "CAPABILITY", "model_unavailable", "required_features", "resolve_model"]

CAPABILITY = "chat.completions"
AUTO = "auto"


def required_features(request: dict[str, Any]) -> set[str]:
    needs: set[str] = set()
    if request.get("tools"):
        needs.add("tools")
    for message in request["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                kind = part.get("type")
                if kind == "image_url":
                    needs.add("vision")
                elif kind == "input_audio":
                    needs.add("audio_input")
    if "audio" in (request.get("modalities") or []):
        needs.add("audio_output")
    fmt = request.get("response_format") or {}
    if fmt.get("type") in ("json_schema", "json_object"):
        needs.add(fmt["type"])
    if request.get("reasoning_effort"):
        needs.add("reasoning")
    if request.get("logprobs"):
        needs.add("logprobs")
    return needs


def _unit_price(model: Model) -> Any:
    p = prices_for(model)
    return p.input + p.output


def resolve_model(catalog: Catalog, request: dict[str, Any]) -> Model:
    """422 for unknown models, 503 when nothing can serve it now."""
    name = request["model"]
    if name == AUTO:
        needs = required_features(request)
        capable = [m for m in catalog.models_for(CAPABILITY) if needs <= m.features]
        if not capable:
            raise invalid(f"No model supports everything this request needs: "
                          f"{', '.join(sorted(needs))}.", "/model")
        ready = [m for m in capable if servable(m)]
        if not ready:
            raise model_unavailable(capable[0], name=AUTO)
        return min(ready, key=_unit_price)
    model = catalog.model(name)
    if model is None or not model.has(CAPABILITY):
        raise invalid(f"Unknown chat model '{name}'. GET /v1/models lists them.", "/model")
    if not servable(model):
        raise model_unavailable(model)
    return model

