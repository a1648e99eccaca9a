"""POST /openai/v1/images/generations and /openai/v1/images/edits: OpenAI's synchronous Images
API for SDK users, built on beatra's image tasks.

Each call submits exactly the task the contract's asynchronous endpoints would (same service,
same hold, same 402/422/503), waits for it (bounded by `wait_budget`), and answers OpenAI's
ImagesResponse; a task still running at the end of the wait answers 504 `task_pending` with the
task id. The contract's /v1/images/* endpoints stay asynchronous.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from flask import Response, current_app
from flask_smorest import Blueprint

from beatra.api.docs import REQUEST_ID_HEADER, operation
from beatra.api.input_guard import body_limit
from beatra.api.openai_compat import mapping, render, submission, waiting
from beatra.api.openai_compat.schemas import (
    MAX_EDIT_IMAGES,
    OpenAIImageEditFormSchema,
    OpenAIImageGenerateSchema,
    OpenAIImagesResponseSchema,
)
from beatra.api.uploads.routes import MULTIPART_OVERHEAD
from beatra.api.uploads.schemas import MultipartParser
from beatra.auth import current_caller
from beatra.errors import invalid
from beatra.images import service
from beatra.runtime import current_runtime
from beatra.storage.service import save_artifact
from beatra.tasks import service as tasks
from beatra.tasks.models import Task


class OpenAICompatBlueprint(Blueprint):
    ARGUMENTS_PARSER = MultipartParser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING, "multipart": "multipart/form-data"}


blp = OpenAICompatBlueprint(
    "openai_images", __name__, url_prefix="/openai/v1",
    description="OpenAI-compatible synchronous Images API (waits for a beatra image task)")

_ERRORS = {
    400: "The task failed on a content policy (code content_policy_violation)",
    402: "Insufficient balance for the task's hold (nothing was queued)",
    409: "Same Idempotency-Key still being submitted (retryable), or the task was canceled "
         "(task_canceled)",
    502: "The task failed upstream (upstream_error); details.task_id names it",
    503: "The model has no upstream available",
    504: "The task is still running after the wait (task_pending); details.task_id names it",
}


def _answer(task: Task, replayed: bool, response_format: str,
            warnings: list[dict[str, Any]]) -> Response:
    account_id = task.account_id
    keyed = submission.idempotency_key() is not None
    started = time.monotonic()
    done = task.terminal or waiting.wait_until_terminal(account_id, task.id,
                                                        waiting.wait_budget())
    task = tasks.get_task(account_id, task.id)
    if not done:
        raise render.still_running(task, round(time.monotonic() - started, 1), keyed=keyed)
    if task.status != "succeeded":
        raise render.task_error(task, keyed=keyed)
    body = render.images_response(task, response_format, warnings)
    resp = Response(orjson.dumps(body), status=200, mimetype="application/json")
    if replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp


def _run(params: dict[str, Any], submit: Callable[[dict[str, Any]], Task]) -> Response:
    request_body, warnings = mapping.beatra_request(params)
    account_id = current_caller().account_id

    def submit_and_send() -> Task:
        task = submit(request_body)  # committed as queued; the message goes after the commit
        current_runtime().send_task(task.id)
        return task

    task, replayed = submission.submit_once(account_id, submit_and_send)
    return _answer(task, replayed, params.get("response_format") or "url", warnings)


@blp.route("/images/generations", methods=["POST"])
@submission.own_idempotency
@operation(blp, "openai_images_generate_openai_v1_images_generations_post", idempotent=True,
           errors=_ERRORS)
@blp.arguments(OpenAIImageGenerateSchema)
@blp.response(200, OpenAIImagesResponseSchema, headers=REQUEST_ID_HEADER,
              description="The finished images (OpenAI ImagesResponse)")
def generate(params: dict[str, Any]) -> Response:
    """Create images (OpenAI-compatible, synchronous)

    Submits a `images.generations` task and waits for it (up to 120 s, less when the client's
    timeout is shorter). Billing and errors are the task's; `beatra.task_id` names it.
    """
    caller = current_caller()
    return _run(params, lambda body: service.submit_text_to_image(
        caller.account_id, body, key_id=caller.key_id))


@blp.route("/images/edits", methods=["POST"])
@submission.own_idempotency
@operation(blp, "openai_images_edit_openai_v1_images_edits_post", idempotent=True,
           errors={**_ERRORS, 413: "Images together larger than 100 MB"})
@blp.arguments(OpenAIImageEditFormSchema, location="multipart")
@blp.response(200, OpenAIImagesResponseSchema, headers=REQUEST_ID_HEADER,
              description="The finished images (OpenAI ImagesResponse)")
def edit(params: dict[str, Any]) -> Response:
    """Edit images (OpenAI-compatible, synchronous)

    1..16 input images (`image` or `image[]` parts) become an `images.image_to_image` task;
    then as for generations.
    """
    files = [*params.pop("image"), *params.pop("images")]
    if not files:
        raise invalid("Send at least one input image as a file part named 'image'.", "/image")
    if len(files) > MAX_EDIT_IMAGES:
        raise invalid(f"At most {MAX_EDIT_IMAGES} input images, not {len(files)}.", "/image")
    caller = current_caller()
    account_id = caller.account_id
    max_bytes = current_app.extensions["beatra.settings"].upload_max_bytes

    def submit(body: dict[str, Any]) -> Task:
        # Stored like uploads (content-addressed, sniffed), then referenced as artifacts.
        refs = []
        for i, upload in enumerate(files):
            artifact, _ = save_artifact(account_id, upload.stream, purpose="media_input",
                                        max_bytes=max_bytes, param=f"/image/{i}")
            refs.append({"type": "artifact", "artifact_id": artifact.id})
        return service.submit_image_to_image(
            account_id, {**body, "image": refs[0], "extra_images": refs[1:]},
            key_id=caller.key_id)

    return _run(params, submit)


# All images together may be as large as one upload (the contract's 100 MB); see input_guard.
body_limit(lambda settings: settings.upload_max_bytes + MULTIPART_OVERHEAD)(edit)
