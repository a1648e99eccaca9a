"""POST /v1/uploads: single-shot upload (≤100 MB), content-addressed and de-duplicated.
GET /v1/uploads: the caller's uploads, newest first, cursor-paged."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from beatra.api.docs import REQUEST_ID_HEADER, operation
from beatra.api.input_guard import body_limit
from beatra.api.uploads.schemas import (
    MultipartParser,
    UploadFormSchema,
    UploadListQuerySchema,
    UploadListResponseSchema,
    UploadResponseSchema,
)
from beatra.auth import current_caller
from beatra.config import Settings, current_settings
from beatra.storage.service import artifact_view, list_uploads, save_artifact

# Multipart framing and the small form fields ride on top of the file itself.
MULTIPART_OVERHEAD = 1024 * 1024


class UploadsBlueprint(Blueprint):
    ARGUMENTS_PARSER = MultipartParser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING, "multipart": "multipart/form-data"}


blp = UploadsBlueprint("uploads", __name__, url_prefix="/v1")


def _body_cap(settings: Settings) -> int:
    # Werkzeug spools file parts over 500 KB to a temp file, never to memory.
    return settings.upload_max_bytes + MULTIPART_OVERHEAD


@blp.route("/uploads", methods=["POST"])
@body_limit(_body_cap)
@operation(blp, "upload_v1_uploads_post", idempotent=True,
           errors={413: "File larger than 100 MB"})
@blp.arguments(UploadFormSchema, location="multipart")
@blp.response(201, UploadResponseSchema, description="Upload accepted; artifact created",
              headers=REQUEST_ID_HEADER)
@blp.alt_response(200, schema=UploadResponseSchema, headers=REQUEST_ID_HEADER,
                  description="Content already exists; returns existing artifact")
def upload(form: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Single-shot upload (≤100MB)

    Stores the file content-addressed (sha256). The same bytes uploaded again by the same
    account for the same purpose return the existing artifact with 200. The media type is
    sniffed from the bytes; a declared `media_type` the bytes contradict is refused.
    """
    caller = current_caller()
    stream = form["file"].stream
    if stream.seekable():
        stream.seek(0)
    artifact, created = save_artifact(
        caller.account_id, stream, purpose=form["purpose"],
        declared_media_type=form["media_type"], metadata=form["metadata"],
        max_bytes=current_settings().upload_max_bytes,
    )
    return artifact_view(artifact), 201 if created else 200


@blp.route("/uploads", methods=["GET"])
@operation(blp, "list_uploads_v1_uploads_get")
@blp.arguments(UploadListQuerySchema, location="query", as_kwargs=True)
@blp.response(200, UploadListResponseSchema, headers=REQUEST_ID_HEADER)
def list_(limit: int, cursor: str | None, purpose: str | None) -> dict[str, Any]:
    """List the caller's uploads

    Newest first; task outputs are not listed (they are in each task's `output`). Pass
    `next_cursor` back as `cursor` for the next page. Content URLs are signed and expire.
    """
    rows, next_cursor = list_uploads(current_caller().account_id, limit=limit, cursor=cursor,
                                     purpose=purpose)
    return {"data": [artifact_view(a) for a in rows], "next_cursor": next_cursor,
            "has_more": next_cursor is not None}
