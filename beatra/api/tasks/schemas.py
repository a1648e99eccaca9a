"""Task API schemas: the list query, the cancel body, and the TaskEnvelope documentation.

Served enums and limits match the contract exactly (a test diffs them); value checks the
contract leaves as plain strings (status, capability, expand) happen in `validates_schema`
so they still answer 422 with a `param`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from beatra.catalog.capabilities import CAPABILITIES
from beatra.tasks.models import STATUSES
from beatra.tasks.serialize import EXPANDABLE

_DECIMAL = r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$"
_LIST_FIELDS = ("status", "capability")


def _credits(description: str) -> fields.String:
    return fields.String(allow_none=True, validate=validate.Regexp(_DECIMAL),
                         metadata={"description": description})


# --- requests ----------------------------------------------------------------------------


class UtcDateTime(fields.DateTime):
    """ISO 8601; an offset is converted to UTC, none means UTC (timestamps are stored in UTC)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)


class TaskListQuerySchema(Schema):
    status = fields.List(fields.String(), allow_none=True, metadata={
        "description": "Filter by status (repeat the parameter, `status[]=`, or comma-separate):"
                       " queued, running, succeeded, failed, canceled."})
    capability = fields.List(fields.String(), allow_none=True, metadata={
        "description": "Filter by capability, e.g. images.generations."})
    created_after = UtcDateTime(allow_none=True)
    created_before = UtcDateTime(allow_none=True)
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(allow_none=True, metadata={
        "description": "Opaque `next_cursor` from the previous page (same `order`)."})
    order = fields.String(load_default="desc", validate=validate.OneOf(["asc", "desc"]))
    expand = fields.String(allow_none=True, metadata={
        "description": "Comma-separated fields to include: output,usage,billing,callback,input,all"
    })

    @pre_load
    def _arrays(self, data: Any, **_: Any) -> Any:
        """Accept `status=a&status=b`, `status[]=a` and `status=a,b` alike."""
        raw = getattr(data, "data", data)  # webargs hands us a proxy over the MultiDict
        if not hasattr(raw, "getlist"):
            return data
        out: dict[str, Any] = {k: raw.get(k) for k in raw if not k.endswith("[]")}
        for name in _LIST_FIELDS:
            values = raw.getlist(name) + raw.getlist(f"{name}[]")
            out.pop(name, None)
            if values:
                # An empty value (`status=`) is kept so validation refuses it, rather than
                # silently answering the unfiltered list.
                out[name] = [v.strip() for item in values for v in item.split(",")]
        return out

    @validates_schema
    def _values(self, data: dict[str, Any], **_: Any) -> None:
        for name, allowed in (("status", STATUSES), ("capability", tuple(CAPABILITIES))):
            bad = [v for v in data.get(name) or [] if v not in allowed]
            if bad:
                what = f"unknown value {bad[0]!r}" if bad[0] else "empty value"
                raise ValidationError(f"{what}; one of: {', '.join(allowed)}.", name)
        expand = data.get("expand")
        if expand:
            parts = [p.strip() for p in expand.split(",") if p.strip()]
            bad = [p for p in parts if p not in (*EXPANDABLE, "all")]
            if bad:
                raise ValidationError(f"cannot expand {bad[0]!r}; one of: "
                                      f"{', '.join(EXPANDABLE)}, all.", "expand")
        after, before = data.get("created_after"), data.get("created_before")
        if after and before and after >= before:
            raise ValidationError("must be later than created_after.", "created_before")


def expand_fields(expand: str | None) -> frozenset[str] | None:
    """The fields to add to each summary; None means every field (`all`)."""
    parts = {p.strip() for p in (expand or "").split(",") if p.strip()}
    return None if "all" in parts else frozenset(parts)


class TaskCancelRequestSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    reason = fields.String(allow_none=True, load_default=None,
                           validate=validate.Length(max=512))

    @pre_load
    def _null_body(self, data: Any, **_: Any) -> Any:
        return {} if data is None else data


# The contract: the body may be absent, null, or a TaskCancelRequest.
CANCEL_BODY_DOC = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": {"anyOf": [
            {"type": "object", "properties": {
                "reason": {"type": ["string", "null"], "maxLength": 512}}},
            {"type": "null"},
        ]}}},
    }
}


# --- responses (documentation; beatra.tasks.serialize builds the dicts) ----------------------


class TaskProgressSchema(Schema):
    percent = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=100))
    stage = fields.String(allow_none=True)
    message = fields.String(allow_none=True)


class TaskErrorSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    retryable = fields.Boolean(required=True)


class TaskWarningSchema(Schema):
    code = fields.String(required=True, metadata={"description": "e.g. option_clamped / "
                                                                 "auto_routed"})
    message = fields.String(required=True)
    field = fields.String(allow_none=True)


class UsageLineSchema(Schema):
    meter = fields.String(required=True)
    quantity = fields.String(required=True, validate=validate.Regexp(_DECIMAL))
    unit = fields.String(required=True)
    billed_amount_credits = _credits("Credits charged for this usage line.")
    billed_amount_credits_usd_reference = _credits("USD reference; display only.")


class UsageObjectSchema(Schema):
    input_tokens = fields.Integer(allow_none=True)
    output_tokens = fields.Integer(allow_none=True)
    cache_read_tokens = fields.Integer(allow_none=True)
    cache_creation_tokens = fields.Integer(allow_none=True)
    reasoning_tokens = fields.Integer(allow_none=True)
    image_count = fields.Integer(allow_none=True)
    image_pixels = fields.Integer(allow_none=True)
    video_seconds = fields.Float(allow_none=True)
    audio_seconds = fields.Float(allow_none=True)
    characters = fields.Integer(allow_none=True)
    lines = fields.List(fields.Nested(UsageLineSchema))
    credits = _credits("Credits charged for this task.")
    credits_usd_reference = _credits("USD reference; display only.")


class TaskBillingSchema(Schema):
    reserved_credits = _credits("Credits held at submission (released when the task ends).")
    charged_credits = _credits("Credits charged for this task.")
    refunded_credits = _credits("Credits refunded (failed or canceled task).")
    charged_credits_usd_reference = _credits("USD reference; display only.")
    refunded_credits_usd_reference = _credits("USD reference; display only.")
    currency = fields.String(dump_default="USD", validate=validate.OneOf(["USD"]))


class TaskCallbackSchema(Schema):
    url = fields.String(required=True)
    status = fields.String(required=True,
                           validate=validate.OneOf(["pending", "delivered", "retrying", "failed"]))
    attempt_count = fields.Integer(required=True)
    delivered_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    last_error = fields.String(allow_none=True, metadata={
        "description": "Last HTTP body/error (\u2264512 chars, truncated)"})


class TaskLinksSchema(Schema):
    self = fields.String(required=True)
    cancel = fields.String(allow_none=True)


class TaskEnvelopeSchema(Schema):
    object = fields.String(dump_default="task", validate=validate.OneOf(["task"]))
    task_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    capability = fields.String(required=True)
    model = fields.String(required=True, metadata={
        "description": "Caller-requested model verbatim (may be 'auto')"})
    resolved_model = fields.String(allow_none=True, metadata={
        "description": "The model that runs: chosen at submission (for `auto`, by routing; "
                       "otherwise equals model)"})
    metadata = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    input = fields.Dict(allow_none=True)
    progress = fields.Nested(TaskProgressSchema, allow_none=True)
    output = fields.Dict(allow_none=True)
    warnings = fields.List(fields.Nested(TaskWarningSchema))
    error = fields.Nested(TaskErrorSchema, allow_none=True)
    usage = fields.Nested(UsageObjectSchema, allow_none=True)
    billing = fields.Nested(TaskBillingSchema, allow_none=True)
    callback = fields.Nested(TaskCallbackSchema, allow_none=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    started_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    completed_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    cancel_requested_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    cancel_reason = fields.String(allow_none=True, metadata={
        "description": "The reason given when the cancel was requested."})
    links = fields.Nested(TaskLinksSchema, required=True)


class TaskListResponseSchema(Schema):
    object = fields.String(dump_default="list", validate=validate.OneOf(["list"]))
    data = fields.List(fields.Dict(), required=True, metadata={
        "description": "TaskSummary[] by default; TaskEnvelope[] with expand"})
    next_cursor = fields.String(allow_none=True)
    has_more = fields.Boolean(dump_default=False)
