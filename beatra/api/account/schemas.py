"""GET /v1/account and GET /v1/usage: query and response bodies."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from beatra.billing.usage import GROUPS

_AMOUNT = {"description": "Credits as a decimal string", "pattern": r"^-?\d+(\.\d+)?$"}


class DayOrInstant(fields.Field):
    """`YYYY-MM-DD` (a whole UTC day) or an RFC 3339 date-time (no offset means UTC).
    Loads as (UTC datetime, whether it was a date)."""

    default_error_messages = {"invalid": "Not a date (YYYY-MM-DD) or an RFC 3339 date-time."}

    def _deserialize(self, value: Any, attr: str | None, data: Any,
                     **kwargs: Any) -> tuple[datetime, bool]:
        if not isinstance(value, str) or not 10 <= len(value) <= 40:
            raise self.make_error("invalid")
        text = value.strip()
        try:
            if len(text) == 10:
                return datetime.combine(date.fromisoformat(text), time(), UTC), True
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise self.make_error("invalid") from None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC), False
        return parsed.astimezone(UTC), False


class UsageQuerySchema(Schema):
    start = DayOrInstant(data_key="from", metadata={
        "description": "Start (inclusive): `YYYY-MM-DD` or RFC 3339. Default: 00:00 UTC 29 "
                       "days before `to`'s day (30 calendar days with it).",
        "type": "string"})
    end = DayOrInstant(data_key="to", metadata={
        "description": "End (inclusive; a date means that whole UTC day): `YYYY-MM-DD` or "
                       "RFC 3339. Default: now.",
        "type": "string"})
    group_by = fields.String(load_default="day", validate=validate.OneOf(GROUPS), metadata={
        "description": "`day` (UTC, `YYYY-MM-DD`), `model`, `key` (API key id) or "
                       "`capability`."})

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None and end[0] < start[0]:
            raise ValidationError("must not be before 'from'.", "to")


class UsageGroupSchema(Schema):
    group = fields.String(required=True, metadata={
        "description": "The day (YYYY-MM-DD), model id, key id or capability; `unknown` for "
                       "movements recorded before attribution existed."})
    requests = fields.Integer(required=True, metadata={
        "description": "Settled calls and tasks (ledger captures)"})
    credits = fields.String(required=True, metadata={
        **_AMOUNT, "description": "Credits captured: exactly the ledger's sum"})
    input_tokens = fields.Integer(required=True)
    output_tokens = fields.Integer(required=True)


class UsageListSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(UsageGroupSchema), required=True)


class AccountKeySchema(Schema):
    key_id = fields.String(required=True)
    name = fields.String(allow_none=True, required=True)
    credit_limit = fields.String(allow_none=True, required=True, metadata={
        **_AMOUNT, "description": "Most this key may have captured plus held; null: no limit"})
    spent = fields.String(required=True, metadata={
        **_AMOUNT, "description": "Credits the ledger captured for this key"})
    expires_at = fields.String(allow_none=True, required=True, metadata={"format": "date-time"})


class AccountSchema(Schema):
    object = fields.Constant("account")
    account_id = fields.String(required=True)
    name = fields.String(required=True)
    balance = fields.String(required=True, metadata={
        **_AMOUNT, "description": "Credits available now (open holds already taken out)"})
    reserved = fields.String(required=True, metadata={
        **_AMOUNT, "description": "Credits held by calls and tasks in flight"})
    key = fields.Nested(AccountKeySchema, required=True, metadata={
        "description": "The API key this request was made with"})
