"""GET /v1/health: cheap, public, touches no external store."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from beatra.api.docs import REQUEST_ID_HEADER, operation

blp = Blueprint("health", __name__, url_prefix="/v1")


@blp.route("/health", methods=["GET"])
@operation(blp, "health_v1_health_get", auth=False)
@blp.response(200, headers=REQUEST_ID_HEADER)
@blp.doc(responses={"200": {"content": {"application/json": {"schema": {
    "type": "object", "additionalProperties": True}}}}})
def health() -> dict[str, Any]:
    """Health

    Cheap self-check — does NOT depend on external stores.
    """
    return {"status": "ok", "version": "0.1.0"}
