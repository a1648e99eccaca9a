"""GET /v1/tasks, GET /v1/tasks/{task_id}, POST /v1/tasks/{task_id}/cancel,
POST /v1/tasks/{task_id}/callback/redeliver."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from werkzeug.routing import BaseConverter

from beatra.api.docs import REQUEST_ID_HEADER, operation
from beatra.api.tasks.schemas import (
    CANCEL_BODY_DOC,
    TaskCancelRequestSchema,
    TaskEnvelopeSchema,
    TaskListQuerySchema,
    TaskListResponseSchema,
    expand_fields,
)
from beatra.auth import current_caller
from beatra.runtime import current_runtime
from beatra.tasks import serialize, service
from beatra.webhooks import service as webhooks_service

blp = Blueprint("tasks", __name__, url_prefix="/v1")


class IdConverter(BaseConverter):
    """Any one path segment. Documented as a plain string, like the contract (the default
    converter would add minLength: 1)."""


blp.record_once(lambda state: state.app.url_map.converters.setdefault("id", IdConverter))


@blp.route("/tasks", methods=["GET"])
@operation(blp, "list_tasks_v1_tasks_get")
@blp.arguments(TaskListQuerySchema, location="query", as_kwargs=True)
@blp.response(200, TaskListResponseSchema, headers=REQUEST_ID_HEADER)
def list_tasks(**args: Any) -> dict[str, Any]:
    """List the caller's tasks

    Returns TaskSummary by default. Use `?expand=output,usage,billing,callback,input` or
    `?expand=all` to return full TaskEnvelope items.
    """
    page = service.list_tasks(
        current_caller().account_id,
        statuses=args.get("status"), capabilities=args.get("capability"),
        created_after=args.get("created_after"), created_before=args.get("created_before"),
        limit=args["limit"], cursor=args.get("cursor"), order=args["order"],
    )
    data = serialize.render(page.tasks, expand_fields(args.get("expand")))
    return {"data": data, "next_cursor": page.next_cursor, "has_more": page.has_more}


@blp.route("/tasks/<id:task_id>", methods=["GET"])
@operation(blp, "get_task_v1_tasks__task_id__get", errors={404: "Not Found"})
@blp.response(200, TaskEnvelopeSchema, headers=REQUEST_ID_HEADER)
def get_task(task_id: str) -> dict[str, Any]:
    """Get a task by id"""
    return serialize.envelope(service.get_task(current_caller().account_id, task_id))


@blp.route("/tasks/<id:task_id>/cancel", methods=["POST"])
@operation(blp, "cancel_task_v1_tasks__task_id__cancel_post", idempotent=True,
           errors={404: "Not Found"})
@blp.arguments(TaskCancelRequestSchema, location="json", required=False)
@blp.doc(**CANCEL_BODY_DOC)
@blp.response(200, TaskEnvelopeSchema, headers=REQUEST_ID_HEADER,
              description="Already terminal; returns final state (idempotent)")
@blp.alt_response(202, schema=TaskEnvelopeSchema, headers=REQUEST_ID_HEADER,
                  description="Cancel requested; the body is the task as of now (a queued task "
                              "is already canceled, a running one stops at its next checkpoint)")
def cancel_task(body: dict[str, Any], task_id: str) -> tuple[dict[str, Any], int]:
    """Cancel a task (best-effort)"""
    task, was_terminal = service.cancel(current_caller().account_id, task_id, body.get("reason"),
                                      current_runtime())
    return serialize.envelope(task), 200 if was_terminal else 202


@blp.route("/tasks/<id:task_id>/callback/redeliver", methods=["POST"])
@operation(blp, "redeliver_task_callback_v1_tasks__task_id__callback_redeliver_post",
           idempotent=True, errors={
               404: "Not Found",
               409: "The task has not ended yet (retryable), or a request with the same "
                    "Idempotency-Key is still in progress",
               422: "No active webhook endpoint, or validation error",
           })
@blp.response(202, TaskEnvelopeSchema, headers=REQUEST_ID_HEADER,
              description="Callback re-scheduled; `callback` shows the new delivery")
def redeliver_callback(task_id: str) -> dict[str, Any]:
    """Redeliver a task's callback

    Starts the finished task's webhook delivery over (attempt count 0, same `webhook-id`) and
    sends it now.
    """
    return webhooks_service.redeliver(current_caller().account_id, task_id, current_runtime())
