"""POST /v1/uploads: single-shot upload (≤100 MB), content-addressed and de-duplicated."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint

from beatra.api.docs import REQUEST_ID_HEADER, operation
from beatra.api.uploads.schemas import MultipartParser, UploadFormSchema, UploadResponseSchema
from beatra.auth import current_caller
from beatra.config import current_settings
from beatra.errors import ApiError
from beatra.storage.service import artifact_view, save_artifact

# Multipart framing and the small form fields ride on top of the file itself.
MULTIPART_OVERHEAD = 1024 * 1024


class UploadsBlueprint(Blueprint):
    ARGUMENTS_PARSER = MultipartParser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING, "multipart": "multipart/form-data"}


blp = UploadsBlueprint("uploads", __name__, url_prefix="/v1")


def upload_body_cap() -> int:
    return current_settings().upload_max_bytes + MULTIPART_OVERHEAD


@blp.before_request
def _allow_large_body() -> None:
    # The app refuses bodies over MAX_CONTENT_LENGTH (16 MB) before reading; uploads may be
    # 100 MB. Werkzeug then spools file parts over 500 KB to a temp file, never to memory,
    # and still stops (413) at this cap when the body has no Content-Length.
    cap = upload_body_cap()
    request.max_content_length = cap
    if request.content_length is not None and request.content_length > cap:
        raise ApiError(413, "payload_too_large",
                       f"Request body is {request.content_length} bytes; uploads are limited "
                       f"to {cap - MULTIPART_OVERHEAD} bytes per file.")


@blp.route("/uploads", methods=["POST"])
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


# Read by the app's before_request (beatra/__init__.py) to size its Content-Length check.
upload.max_body_bytes = 100 * 1024 * 1024 + MULTIPART_OVERHEAD
