"""Request and response shapes of the OpenAI Images API as served under /openai/v1.

Requests are closed (an unknown parameter is a 422, as everywhere in beatra); the values are
checked here, their meaning in beatra is decided in `mapping`.
"""

from __future__ import annotations

from typing import Any

from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.datastructures import FileStorage

from beatra.api.images.schemas import MODELS, OUTPUT_FORMATS

MAX_EDIT_IMAGES = 16  # `image` + 15 `extra_images` in beatra's image-to-image request


class FileField(Upload):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, FileStorage):
            raise ValidationError("Send images as multipart file parts.")
        return value


class _ImageParams(Schema):
    prompt = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    model = fields.String(load_default="auto", validate=validate.OneOf(MODELS))
    n = fields.Integer(load_default=1, validate=validate.Range(min=1, max=4))
    quality = fields.String(load_default=None, allow_none=True, metadata={
        "description": "auto|standard|medium → beatra standard; high|hd → beatra hd."})
    size = fields.String(load_default=None, allow_none=True, metadata={
        "description": "auto or WIDTHxHEIGHT; mapped to the nearest aspect ratio beatra makes "
                       "(a `size_mapped` warning when not exact)."})
    response_format = fields.String(load_default="url", allow_none=True,
                                    validate=validate.OneOf(["url", "b64_json"]))
    output_format = fields.String(load_default="png", allow_none=True,
                                  validate=validate.OneOf(OUTPUT_FORMATS))
    background = fields.String(load_default=None, allow_none=True)
    moderation = fields.String(load_default=None, allow_none=True)
    style = fields.String(load_default=None, allow_none=True)
    output_compression = fields.Integer(load_default=None, allow_none=True)
    partial_images = fields.Integer(load_default=None, allow_none=True)
    stream = fields.Boolean(load_default=None, allow_none=True)
    user = fields.String(load_default=None, allow_none=True,
                         metadata={"description": "Accepted and ignored."})
    safety_identifier = fields.String(load_default=None, allow_none=True,
                                      metadata={"description": "Accepted and ignored."})


class OpenAIImageGenerateSchema(_ImageParams):
    pass


class OpenAIImageEditFormSchema(_ImageParams):
    image: fields.Field = fields.List(FileField(), load_default=list, metadata={
        "description": "One input image (or several parts named `image`)."})
    images: fields.Field = fields.List(
        FileField(), data_key="image[]", load_default=list, metadata={
            "description": f"Input images as the SDKs send a list; 1..{MAX_EDIT_IMAGES} in all."})
    input_fidelity = fields.String(load_default=None, allow_none=True)
    mask = FileField(load_default=None, allow_none=True,
                     metadata={"description": "Not supported (422)."})


class OpenAIImageSchema(Schema):
    url = fields.String(metadata={"description": "Signed, expiring content URL"})
    b64_json = fields.String(metadata={"description": "With response_format=b64_json"})


class OpenAIImageUsageSchema(Schema):
    input_tokens = fields.Integer()
    output_tokens = fields.Integer()
    total_tokens = fields.Integer()
    input_tokens_details = fields.Dict()
    credits = fields.String(metadata={"description": "beatra: credits charged for the task"})
    credits_usd_reference = fields.String()


class OpenAIImagesBeatraSchema(Schema):
    task_id = fields.String(metadata={"description": "Follow it at /v1/tasks/{task_id}"})
    model = fields.String()
    resolved_model = fields.String()
    charged_credits = fields.String()
    warnings = fields.List(fields.Dict())


class OpenAIImagesResponseSchema(Schema):
    created = fields.Integer(required=True)
    data = fields.List(fields.Nested(OpenAIImageSchema), required=True)
    output_format = fields.String()
    quality = fields.String()
    size = fields.String()
    usage = fields.Nested(OpenAIImageUsageSchema)
    beatra = fields.Nested(OpenAIImagesBeatraSchema,
                           metadata={"description": "beatra's extra field: the task behind it"})
