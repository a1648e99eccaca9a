"""Submitting image tasks: checks beyond the schema, model choice, option mapping, the hold.

Everything that can refuse a request (422, 402, 503) happens here, before a task exists:
inputs are resolved to the caller's artifacts (so a bad URL or data URI is a 422 with its
`param`), the model is chosen, and the hold is reserved together with the queued row.
"""

from __future__ import annotations

from typing import Any

from beatra.catalog.model import Model
from beatra.catalog.registry import NOT_OFFERED, current_catalog, model_unavailable, servable
from beatra.errors import invalid
from beatra.images import options
from beatra.images.pricing import hold_meters
from beatra.media_inputs import resolve_media_input
from beatra.tasks import service as tasks
from beatra.tasks.models import Task
from beatra.tasks.pricing import PriceTable, estimate

TEXT_TO_IMAGE = "images.generations"
IMAGE_TO_IMAGE = "images.image_to_image"
AUTO = "auto"
# What the Images API accepts as edit inputs (wire doc §3.1).
INPUT_MIME_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
_OPTION_KEYS = ("model", "prompt", "quality", "aspect_ratio", "output_format", "n")


def choose_model(capability: str, requested: str) -> tuple[Model, list[dict[str, Any]]]:
    """The catalog model to run, and an `auto_routed` warning when the caller said auto."""
    catalog = current_catalog()
    if requested == AUTO:
        ready = [m for m in catalog.models_for(capability) if servable(m)]
        if not ready:
            raise model_unavailable(
                None, message="No image model can serve this request right now.",
                among=catalog.models_for(capability), with_retry_after=False)
        chosen = ready[0]
        return chosen, [options.warning("auto_routed",
                                        f"model 'auto' was routed to {chosen.id}.", "model")]
    model = catalog.model(requested)
    if model is None or not model.has(capability):
        raise model_unavailable(None, name=requested, message=NOT_OFFERED)
    if not servable(model):
        raise model_unavailable(model, with_retry_after=False)
    return model, []


def _check_prompt(prompt: str) -> None:
    if not prompt.strip():
        raise invalid("prompt must contain some text.", "/prompt")


def _submit(account_id: str, key_id: str | None, capability: str, request: dict[str, Any],
            model: Model, warnings: list[dict[str, Any]], task_input: dict[str, Any],
            input_images: int) -> Task:
    plan, clamped = options.plan(request, model)
    prices = PriceTable.of(model, current_catalog().credits_per_usd)
    hold = estimate(hold_meters(request["prompt"], plan, input_images, model), prices)
    return tasks.submit(
        account_id=account_id, key_id=key_id, capability=capability,
        requested_model=request["model"], resolved_model=model.id, task_input=task_input,
        hold=hold, prices=prices, warnings=warnings + clamped, state={"plan": plan.to_state()},
    )


def submit_text_to_image(account_id: str, request: dict[str, Any], *,
                         key_id: str | None) -> Task:
    _check_prompt(request["prompt"])
    model, warnings = choose_model(TEXT_TO_IMAGE, request["model"])
    task_input = {k: request[k] for k in _OPTION_KEYS}
    return _submit(account_id, key_id, TEXT_TO_IMAGE, request, model, warnings, task_input, 0)


def _input_ref(account_id: str, spec: dict[str, Any], param: str) -> dict[str, Any]:
    """Resolve one media input to an artifact reference (422 at `param` if unusable)."""
    artifact = resolve_media_input(account_id, spec, kind="image", param=param)
    if artifact.mime_type not in INPUT_MIME_TYPES:
        field = {"url": "url", "data_uri": "data", "artifact": "artifact_id"}[spec["type"]]
        raise invalid(f"Input images must be PNG, JPEG or WebP, not {artifact.mime_type}.",
                      f"{param}/{field}")
    ref: dict[str, Any] = {"type": "artifact", "artifact_id": artifact.id,
                           "source": spec["type"]}
    if spec["type"] == "url":
        ref["url"] = spec["url"]
    return ref


def submit_image_to_image(account_id: str, request: dict[str, Any], *,
                          key_id: str | None) -> Task:
    _check_prompt(request["prompt"])
    model, warnings = choose_model(IMAGE_TO_IMAGE, request["model"])
    extra = request.get("extra_images") or []
    image = _input_ref(account_id, request["image"], "/image")
    extra_refs = [_input_ref(account_id, spec, f"/extra_images/{i}")
                  for i, spec in enumerate(extra)]
    task_input = {k: request[k] for k in _OPTION_KEYS}
    task_input.update(image=image, extra_images=extra_refs)
    return _submit(account_id, key_id, IMAGE_TO_IMAGE, request, model, warnings, task_input,
                   1 + len(extra_refs))
