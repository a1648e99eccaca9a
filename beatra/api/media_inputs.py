"""The contract's media input union (MediaInputUrl | MediaInputArtifact | MediaInputDataUri),
shared by every endpoint that takes input media (image-to-image, reference-audio music).

Schemas only check shape; beatra.media_inputs resolves the input (fetch, decode, ownership).
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from beatra.api.unions import TaggedUnion


class _Input(Schema):
    class Meta:
        unknown = EXCLUDE  # the contract leaves these objects open; extra keys are ignored


def _const(value: str) -> fields.String:
    return fields.String(required=True, validate=validate.OneOf([value]))


class MediaInputUrlSchema(_Input):
    type = _const("url")
    url = fields.String(required=True, metadata={
        "description": "HTTPS URL. External URLs are downloaded and re-hosted to beatra CDN."})


class MediaInputArtifactSchema(_Input):
    type = _const("artifact")
    artifact_id = fields.String(required=True, metadata={
        "description": "ULID of a previously-uploaded artifact"})


class MediaInputDataUriSchema(_Input):
    type = _const("data_uri")
    data = fields.String(required=True, metadata={
        "description": "Data URI (e.g. data:image/png;base64,...) — max 256KB encoded"})


MEDIA_INPUT_COMPONENTS: list[type[Schema]] = [
    MediaInputUrlSchema, MediaInputArtifactSchema, MediaInputDataUriSchema,
]


def media_input(**kwargs: Any) -> TaggedUnion:
    return TaggedUnion("type", {"url": MediaInputUrlSchema,
                                "artifact": MediaInputArtifactSchema,
                                "data_uri": MediaInputDataUriSchema}, **kwargs)
