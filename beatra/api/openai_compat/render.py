"""A terminal image task → OpenAI's ImagesResponse, or the error envelope the SDKs raise.

Billing is the task's: `usage` carries the credits charged (as chat's usage does), and the
`beatra` extra field names the task, so everything stays traceable through the task API.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select

from beatra.errors import ApiError
from beatra.extensions import db
from beatra.storage.models import Artifact
from beatra.storage.service import content_url, open_artifact
from beatra.tasks.models import Task

# A failed task's error code → the HTTP status the synchronous call answers with.
FAILURE_STATUS = {"invalid_request": 422, "content_policy_violation": 400,
                  "insufficient_balance": 402, "model_unavailable": 503,
                  "upstream_error": 502, "internal_error": 500}


def _tokens(usage: dict[str, Any]) -> dict[str, Any]:
    billed = {line["meter"]: int(Decimal(line["quantity"])) for line in usage.get("lines", [])}
    text_in = billed.get("input_text_token", 0)
    image_in = billed.get("input_image_token", 0)
    input_tokens = usage.get("input_tokens")
    output_tokens = usage.get("output_tokens")
    if not isinstance(input_tokens, int):  # no upstream usage: what was billed
        input_tokens = text_in + image_in
    if not isinstance(output_tokens, int):
        output_tokens = billed.get("output_image_token", 0) + billed.get("output_text_token", 0)
    return {"input_tokens": input_tokens, "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "input_tokens_details": {"text_tokens": text_in, "image_tokens": image_in}}


def _item(artifact: Artifact, response_format: str) -> dict[str, str]:
    if response_format == "b64_json":
        with open_artifact(artifact) as fh:
            return {"b64_json": base64.b64encode(fh.read()).decode()}
    return {"url": content_url(artifact)}


def images_response(task: Task, response_format: str,
                    warnings: list[dict[str, Any]]) -> dict[str, Any]:
    """The ImagesResponse for a succeeded task."""
    output = task.output or {}
    items = sorted(output.get("images", []), key=lambda i: i["index"])
    ids = [i["artifact_id"] for i in items]
    rows = {a.id: a for a in db.session.scalars(
        select(Artifact).where(Artifact.account_id == task.account_id, Artifact.id.in_(ids)))}
    usage = task.usage or {}
    return {
        "created": int(task.created_at.timestamp()),
        "data": [_item(rows[i], response_format) for i in ids],
        "output_format": output.get("output_format"),
        "quality": output.get("quality"),
        "size": output.get("size"),
        "usage": {**_tokens(usage), "credits": usage.get("credits"),
                  "credits_usd_reference": usage.get("credits_usd_reference")},
        "beatra": {"task_id": task.id, "model": task.model,
                   "resolved_model": task.resolved_model,
                   "charged_credits": usage.get("credits"),
                   "warnings": [*warnings, *(task.warnings or [])]},
    }


def _task_details(task: Task) -> dict[str, Any]:
    base = current_app.extensions["beatra.settings"].public_url
    return {"task_id": task.id, "status": task.status, "task_url": f"{base}/v1/tasks/{task.id}"}


def _retry_header(retry: bool) -> dict[str, str]:
    # The OpenAI SDKs obey this header before their status-code rules.
    return {"x-should-retry": "true" if retry else "false"}


def task_error(task: Task, *, keyed: bool) -> ApiError:
    """The error for a failed or canceled task. A retry with the same Idempotency-Key would
    only meet the same task again, so the SDK is told not to retry then."""
    details = _task_details(task)
    if task.status == "canceled":
        return ApiError(409, "task_canceled", f"Task {task.id} was canceled.",
                        details=details, headers=_retry_header(False))
    error = task.error or {}
    code = error.get("code") or "upstream_error"
    retryable = bool(error.get("retryable")) and not keyed
    return ApiError(FAILURE_STATUS.get(code, 502), code,
                    f"Task {task.id} failed: {error.get('message') or code}",
                    retryable=retryable, details=details, headers=_retry_header(retryable))


def still_running(task: Task, waited: float, *, keyed: bool) -> ApiError:
    """The timeout answer: the task goes on (and keeps its hold) and can be followed. Retrying
    the same request is only safe with the same Idempotency-Key (it waits on the same task);
    without one a retry would start and charge a second task, so the SDK is told not to."""
    follow = f"GET /v1/tasks/{task.id}"
    hint = ("retry with the same Idempotency-Key to wait again, or " if keyed
            else "send an Idempotency-Key to make retries wait on the same task; ")
    return ApiError(504, "task_pending",
                    f"Task {task.id} is still {task.status} after {waited:g} s; it continues. "
                    f"{hint[0].upper()}{hint[1:]}follow it with {follow}.",
                    retryable=keyed, details=_task_details(task),
                    headers=_retry_header(keyed))
