"""GET /v1/models, /v1/catalog/models, /v1/catalog/capabilities."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from beatra.api.catalog.schemas import CapabilityListSchema, OpenAIModelListSchema
from beatra.api.docs import REQUEST_ID_HEADER, operation
from beatra.catalog.capabilities import CAPABILITIES
from beatra.catalog.registry import current_catalog, servable_models

blp = Blueprint("catalog", __name__, url_prefix="/v1")


def _model_list() -> dict[str, Any]:
    models = servable_models(current_catalog())
    return {"data": [{"id": m.id, "created": m.created, "owned_by": "beatra"} for m in models]}


@blp.route("/models", methods=["GET"])
@operation(blp, "list_models_openai_compat_v1_models_get")
@blp.response(200, OpenAIModelListSchema, headers=REQUEST_ID_HEADER)
def list_models() -> dict[str, Any]:
    """List models (OpenAI-compatible)

    Returns OpenAI-compatible model objects available to the caller.
    """
    return _model_list()


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
