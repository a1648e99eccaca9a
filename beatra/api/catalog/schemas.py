from __future__ import annotations

from marshmallow import Schema, fields


class OpenAIModelSchema(Schema):
    id = fields.String(required=True)
    object = fields.Constant("model")
    created = fields.Integer(required=True, metadata={"description": "Unix seconds"})
    owned_by = fields.String(dump_default="beatra")


class OpenAIModelListSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(OpenAIModelSchema), required=True)


class CapabilityListItemSchema(Schema):
    capability = fields.String(required=True)
    endpoint = fields.String(required=True)
    input_modality = fields.String(required=True)
    output_modality = fields.String(required=True)
    execution_mode = fields.String(required=True)
    description = fields.String(allow_none=True)
    model_count = fields.Integer(required=True)


class CapabilityListSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(CapabilityListItemSchema), required=True)
