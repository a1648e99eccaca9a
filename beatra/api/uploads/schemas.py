"""POST /v1/uploads: the multipart form (contract Body_upload_v1_uploads_post) and the reply."""

from __future__ import annotations

from typing import Any

import orjson
from flask_smorest.fields import Upload
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict, FileStorage

from beatra.errors import invalid
from beatra.storage.models import MEDIA_TYPES, UPLOAD_PURPOSES

METADATA_MAX_CHARS = 16 * 1024


class MultipartParser(FlaskParser):
    """Adds location "multipart": form fields and files parsed as one schema, so the served
    document has the single multipart/form-data requestBody the contract describes."""

    __location_map__ = {**FlaskParser.__location_map__, "multipart": "load_multipart"}

    def load_multipart(self, req: Any, schema: Schema) -> Any:
        # The schema would silently keep the first of several parts: refuse the ambiguity.
        if len(req.files.getlist("file")) > 1:
            raise invalid("Send exactly one multipart part named 'file'.", "/file")
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


class JsonObjectString(fields.String):
    """A string field holding a JSON object; loads as the parsed dict."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > METADATA_MAX_CHARS:
            raise ValidationError(f"At most {METADATA_MAX_CHARS} characters.")
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ValidationError("Not valid JSON; send a JSON object as a string.") from None
        if not isinstance(parsed, dict):
            raise ValidationError("Must be a JSON object.")
        return parsed


class FileField(Upload):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, FileStorage):
            raise ValidationError("Send the file as a multipart file part named 'file'.")
        return value


class UploadFormSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # extra form fields are ignored, as the contract's open schema allows

    file = FileField(required=True, metadata={"contentMediaType": "application/octet-stream"})
    purpose = fields.String(load_default="media_input", validate=validate.OneOf(UPLOAD_PURPOSES))
    media_type = fields.String(load_default=None, allow_none=True,
                               validate=validate.OneOf(MEDIA_TYPES))
    metadata = JsonObjectString(load_default=None, allow_none=True,
                                metadata={"description": "A JSON object, as a string."})


class UploadResponseSchema(Schema):
    object = fields.Constant("upload")
    artifact_id = fields.String(required=True)
    cdn_url = fields.String(required=True, metadata={
        "description": "Signed, expiring URL of the content (no API key needed)."})
    mime_type = fields.String(required=True)
    media_type = fields.String(required=True, validate=validate.OneOf(MEDIA_TYPES))
    size_bytes = fields.Integer(required=True)
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    duration_ms = fields.Integer(allow_none=True)
    checksum_sha256 = fields.String(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})


class UploadListQuerySchema(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(load_default=None, allow_none=True, metadata={
        "description": "Opaque `next_cursor` from the previous page."})
    purpose = fields.String(load_default=None, allow_none=True,
                            validate=validate.OneOf(UPLOAD_PURPOSES),
                            metadata={"description": "Only uploads made for this purpose."})


class UploadListResponseSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(UploadResponseSchema), required=True)
    next_cursor = fields.String(allow_none=True)
    has_more = fields.Boolean(required=True)
