"""GET/PUT/DELETE /v1/webhook-endpoint: the caller's one callback URL."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

from beatra.api.docs import REQUEST_ID_HEADER, operation
from beatra.api.webhooks.schemas import WebhookEndpointPutSchema, WebhookEndpointSchema
from beatra.auth import current_caller
from beatra.errors import not_found
from beatra.webhooks import endpoints

blp = Blueprint("webhooks", __name__, url_prefix="/v1")

_NONE = "No webhook endpoint is configured."


@blp.route("/webhook-endpoint", methods=["GET"])
@operation(blp, "get_webhook_endpoint_v1_webhook_endpoint_get",
           errors={404: "No webhook endpoint configured"})
@blp.response(200, WebhookEndpointSchema, headers=REQUEST_ID_HEADER)
def get_endpoint() -> dict[str, Any]:
    """Get the webhook endpoint

    The URL that receives task callbacks, and whether it is active. The secret is never shown
    here.
    """
    endpoint = endpoints.get(current_caller().account_id)
    if endpoint is None:
        raise not_found(_NONE)
    return endpoints.public_view(endpoint)


@blp.route("/webhook-endpoint", methods=["PUT"])
@operation(blp, "put_webhook_endpoint_v1_webhook_endpoint_put")
@blp.arguments(WebhookEndpointPutSchema)
@blp.response(200, WebhookEndpointSchema, headers=REQUEST_ID_HEADER,
              description="Endpoint updated (secret only when rotated)")
@blp.alt_response(201, schema=WebhookEndpointSchema, headers=REQUEST_ID_HEADER,
                  description="Endpoint created; `secret` is shown this once")
def put_endpoint(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Set the webhook endpoint

    When a task reaches a terminal state, beatra POSTs its TaskEnvelope to this URL, signed per
    the Standard Webhooks spec (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    Setting a URL re-enables an endpoint that was disabled after a 410.
    """
    saved = endpoints.save(current_caller().account_id, body["url"],
                           rotate_secret=body["rotate_secret"])
    return endpoints.public_view(saved.endpoint, saved.secret), 201 if saved.created else 200


@blp.route("/webhook-endpoint", methods=["DELETE"])
@operation(blp, "delete_webhook_endpoint_v1_webhook_endpoint_delete",
           errors={404: "No webhook endpoint configured"})
@blp.response(204, headers=REQUEST_ID_HEADER, description="Endpoint removed")
def delete_endpoint() -> Response:
    """Remove the webhook endpoint

    Callbacks not yet delivered end as `failed`.
    """
    if not endpoints.remove(current_caller().account_id):
        raise not_found(_NONE)
    return Response(status=204)
