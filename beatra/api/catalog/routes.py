"""GET /v1/models, /v1/models/{model}, /v1/catalog/models, /v1/catalog/capabilities."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from beatra.api.catalog.schemas import (
    CapabilityListSchema,
    OpenAIModelListSchema,
    OpenAIModelSchema,
)
from beatra.api.docs import REQUEST_ID_HEADER, operation
from beatra.catalog.capabilities import CAPABILITIES
from beatra.catalog.model import Model
from beatra.catalog.registry import current_catalog, servable_models
from beatra.errors import not_found

blp = Blueprint("catalog", __name__, url_prefix="/v1")


def _model_object(model: Model) -> dict[str, Any]:
    return {"id": model.id, "created": model.created, "owned_by": "beatra"}


def _model_list() -> dict[str, Any]:
    return {"data": [_model_object(m) for m in servable_models(current_catalog())]}


@blp.route("/models", methods=["GET"])
@operation(blp, "list_models_openai_compat_v1_models_get")
@blp.response(200, OpenAIModelListSchema, headers=REQUEST_ID_HEADER)
def list_models() -> dict[str, Any]:
    """List models (OpenAI-compatible)

    Returns OpenAI-compatible model objects available to the caller.
    """
    return _model_list()


@blp.route("/models/<path:model>", methods=["GET"])
@operation(blp, "retrieve_model_openai_compat_v1_models__model__get",
           errors={404: "No such model"})
@blp.response(200, OpenAIModelSchema, headers=REQUEST_ID_HEADER)
def retrieve_model(model: str) -> dict[str, Any]:
    """Retrieve a model (OpenAI-compatible)

    The model object exactly as `/v1/models` lists it.
    """
    for candidate in servable_models(current_catalog()):
        if candidate.id == model:
            return _model_object(candidate)
    raise not_found(f"The model '{model}' does not exist.")


@blp.route("/catalog/models", methods=["GET"])
@operation(blp, "list_catalog_models_v1_catalog_models_get")
@blp.response(200, OpenAIModelListSchema, headers=REQUEST_ID_HEADER)
def list_catalog_models() -> dict[str, Any]:
    """List catalog models

    Returns the same model list as `/v1/models`, namespaced under the beatra catalog.
    """
    return _model_list()


@blp.route("/catalog/capabilities", methods=["GET"])
@operation(blp, "list_capabilities_v1_catalog_capabilities_get")
@blp.response(200, CapabilityListSchema, headers=REQUEST_ID_HEADER)
def list_capabilities() -> dict[str, Any]:
    """List capabilities"""
    models = servable_models(current_catalog())
    items = []
    for cap in CAPABILITIES.values():
        items.append({
            "capability": cap.name,
            "endpoint": cap.endpoint,
            "input_modality": cap.input_modality,
            "output_modality": cap.output_modality,
            "execution_mode": cap.execution_mode,
            "description": cap.description,
            "model_count": sum(1 for m in models if m.has(cap.name)),
        })
    return {"data": items}
