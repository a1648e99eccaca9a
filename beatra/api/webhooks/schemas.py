"""The caller's webhook endpoint: request and response bodies."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from beatra.api.strict import StrictBoolean
from beatra.webhooks.endpoints import URL_MAX


class WebhookEndpointPutSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    url = fields.String(required=True, validate=validate.Length(min=1, max=URL_MAX), metadata={
        "description": "HTTPS URL that receives a signed POST of the TaskEnvelope when a task "
                       "ends. Must resolve to a public address."})
    rotate_secret = StrictBoolean(load_default=False, metadata={
        "description": "Issue a new signing secret for an existing endpoint (the old one stops "
                       "working at once)."})


class WebhookEndpointSchema(Schema):
    object = fields.String(dump_default="webhook_endpoint",
                           validate=validate.OneOf(["webhook_endpoint"]))
    url = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["active", "disabled"]),
                           metadata={"description": "`disabled` after the receiver answered "
                                                    "410 Gone; PUT the URL again to re-enable."})
    disabled_reason = fields.String(allow_none=True)
    secret = fields.String(allow_none=True, metadata={
        "description": "The `whsec_…` signing secret: present only in the response that issued "
                       "it (creation or rotation), never retrievable again."})
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    updated_at = fields.String(required=True, metadata={"format": "date-time"})
