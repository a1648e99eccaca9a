"""POST /v1/images/generations and /v1/images/image-to-image → 202 with a queued task."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from beatra.api.docs import REQUEST_ID_HEADER, operation
from beatra.api.images.schemas import ImageToImageRequestSchema, TextToImageRequestSchema
from beatra.api.tasks.accepted import accepted
from beatra.api.tasks.schemas import TaskEnvelopeSchema
from beatra.auth import current_caller
from beatra.images import service

blp = Blueprint("images", __name__, url_prefix="/v1/images")

_ERRORS = {
    402: "Insufficient balance for the task's hold (nothing was queued)",
    503: "The model has no upstream available",
}


@blp.route("/generations", methods=["POST"])
@operation(blp, "images_generations_v1_images_generations_post", idempotent=True,
           errors=_ERRORS)
@blp.arguments(TextToImageRequestSchema)
@blp.response(202, TaskEnvelopeSchema, headers=REQUEST_ID_HEADER, description="Task accepted")
def generations(body: dict[str, Any]) -> dict[str, Any]:
    """Generate images from a text prompt"""
    caller = current_caller()
    return accepted(service.submit_text_to_image(caller.account_id, body, key_id=caller.key_id))


@blp.route("/image-to-image", methods=["POST"])
@operation(blp, "images_i2i_v1_images_image_to_image_post", idempotent=True, errors=_ERRORS)
@blp.arguments(ImageToImageRequestSchema)
@blp.response(202, TaskEnvelopeSchema, headers=REQUEST_ID_HEADER, description="Task accepted")
def image_to_image(body: dict[str, Any]) -> dict[str, Any]:
    """Generate images from a reference image"""
    caller = current_caller()
    return accepted(service.submit_image_to_image(caller.account_id, body,
                                                  key_id=caller.key_id))
