"""The task handler for both image capabilities: call the upstream, store the images as
artifacts, and report usage. Runs in a worker with the task claimed (beatra.tasks.engine).

Checkpoints (where a cancel takes effect): before the upstream call, between routes, and after
the answer (the images are then discarded and the hold refunded).
"""

from __future__ import annotations

import logging
from typing import Any

from beatra.catalog.model import Route
from beatra.catalog.registry import current_catalog, usable_routes
from beatra.errors import ApiError
from beatra.extensions import db
from beatra.images import pricing
from beatra.images.options import ImagePlan
from beatra.images.service import IMAGE_TO_IMAGE, INPUT_MIME_TYPES
from beatra.providers import openai_images
from beatra.providers.openai_images import ImageRequest, ImageResult, InputImage
from beatra.storage.service import get_artifact, open_artifact, save_bytes
from beatra.tasks.context import TaskContext
from beatra.tasks.handlers import Done, TaskFailure, Wait
from beatra.tasks.routing import first_route_answer

log = logging.getLogger(__name__)

# When every route's circuit is open: park the task this long, this many times, then fail.
ROUTE_WAIT_SECONDS = 10.0
MAX_ROUTE_WAITS = 3


def run_image_task(ctx: TaskContext) -> Done | Wait:
    model = current_catalog().model(ctx.model)
    if model is None:
        raise TaskFailure("model_unavailable", f"Model '{ctx.model}' is no longer offered.")
    plan = ImagePlan.from_state(ctx.state["plan"])
    prompt: str = ctx.input["prompt"]
    inputs = None
    if ctx.capability == IMAGE_TO_IMAGE:
        ctx.progress("preparing_inputs", 5)
        inputs = _load_inputs(ctx)
    routes = usable_routes(model)
    if not routes:
        # Every route's circuit is open (recent upstream failures): check again shortly
        # instead of failing a task the caller is already waiting for.
        waits = ctx.state.get("route_waits", 0)
        if waits < MAX_ROUTE_WAITS:
            ctx.progress("waiting_for_upstream", 5)
            return Wait(ROUTE_WAIT_SECONDS, state={**ctx.state, "route_waits": waits + 1})
        raise TaskFailure("model_unavailable",
                          f"Model '{model.id}' has no upstream available right now.",
                          retryable=True)
    ctx.checkpoint()
    ctx.progress("generating", 10)
    result = _call(ctx, routes, plan, prompt, inputs)
    ctx.checkpoint()
    ctx.progress("storing", 90)
    images = _store(ctx, result)
    _note_changes(ctx, plan, result, len(images))
    pixels = [img["width"] * img["height"] for img in images]
    meters = pricing.usage_meters(result.usage, len(images))
    if meters is None:
        ctx.warn("usage_estimated", "The upstream reported no usage; the images were billed "
                 "at the published per-image token rate.")
        meters = pricing.estimated_meters(prompt, plan.quality, pixels)
    usage: dict[str, Any] = {
        "input_tokens": result.usage.get("input_tokens"),
        "output_tokens": result.usage.get("output_tokens"),
        "image_count": len(images),
        "image_pixels": sum(pixels),
    }
    output = {"images": images, "size": result.size, "quality": result.quality,
              "output_format": result.output_format}
    return Done(output=output, meters=meters, usage=usage)


def _load_inputs(ctx: TaskContext) -> list[InputImage]:
    refs = [ctx.input["image"], *(ctx.input.get("extra_images") or [])]
    images = []
    for i, ref in enumerate(refs):
        artifact = get_artifact(ctx.account_id, ref["artifact_id"])
        if artifact is None:
            raise TaskFailure("invalid_request", f"Input image {ref['artifact_id']} no longer "
                              "exists.")
        with open_artifact(artifact) as fh:
            data = fh.read()
        ext = INPUT_MIME_TYPES.get(artifact.mime_type, "png")
        images.append(InputImage(f"image_{i}.{ext}", data, artifact.mime_type))
    db.session.commit()  # no transaction held open across the upstream call
    return images


def _call(ctx: TaskContext, routes: list[Route], plan: ImagePlan, prompt: str,
          inputs: list[InputImage] | None) -> ImageResult:
    """Each usable route in catalog order until one answers (beatra.catalog.failover); policy
    refusals and rejected requests end the task at once (another route would refuse them too)."""

    def attempt(route: Route) -> ImageResult:
        req = ImageRequest(upstream_model=route.upstream_model, prompt=prompt, n=plan.n,
                           size=plan.size, quality=plan.quality,
                           output_format=plan.output_format)
        if inputs is None:
            return openai_images.generate(route, req)
        return openai_images.edit(route, req, inputs)

    # A moderation refusal keeps its code; anything else the upstream refused or broke is an
    # upstream_error for the task.
    return first_route_answer(ctx, routes, attempt, public_code=lambda f: (
        f.code if f.code == "content_policy_violation" else "upstream_error"))


def _store(ctx: TaskContext, result: ImageResult) -> list[dict[str, Any]]:
    """Copy every image into our artifact store (upstream data never outlives the task)."""
    images = []
    for index, data in enumerate(result.images):
        try:
            artifact = save_bytes(ctx.account_id, data, purpose="task_output",
                                  metadata={"task_id": ctx.task_id, "index": index})
        except ApiError as err:
            raise TaskFailure("upstream_error", f"The upstream sent an unreadable image: "
                              f"{err.message}", retryable=True) from None
        if artifact.media_type != "image" or not artifact.width or not artifact.height:
            raise TaskFailure("upstream_error", f"The upstream sent {artifact.mime_type}, not "
                              "an image.", retryable=True)
        images.append({"index": index, "artifact_id": artifact.id,
                       "mime_type": artifact.mime_type, "width": artifact.width,
                       "height": artifact.height, "size_bytes": artifact.size_bytes})
    return images


def _note_changes(ctx: TaskContext, plan: ImagePlan, result: ImageResult, count: int) -> None:
    """A warning for everything the upstream did differently from what was asked."""
    if result.output_format and result.output_format != plan.output_format:
        ctx.warn("option_changed", f"The upstream returned {result.output_format} instead of "
                 f"{plan.output_format}.", "output_format")
    if result.quality and result.quality != plan.quality:
        ctx.warn("option_changed", f"The upstream used quality {result.quality} instead of "
                 f"{plan.quality}.", "quality")
    if plan.size != "auto" and result.size and result.size != plan.size:
        ctx.warn("option_changed", f"The upstream returned {result.size} images instead of "
                 f"{plan.size}.", "aspect_ratio")
    if count < plan.n:
        ctx.warn("option_changed", f"The upstream returned {count} of the {plan.n} images "
                 "asked for; you are billed for what was returned.", "n")
