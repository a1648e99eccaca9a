"""GET/HEAD /v1/content/<artifact_id>?exp=…&sig=…: signed, expiring artifact bytes.

Public (no API key) so `<img src>` and audio players can use the URL. Supports single byte
ranges (206), conditional GET by ETag (304), and streams from the store without buffering.
"""

from __future__ import annotations

import mimetypes
import time
from typing import Any

from flask import Response, request
from flask_smorest import Blueprint

from beatra.api.docs import _REQUEST_ID, REQUEST_ID_HEADER, ErrorResponseSchema
from beatra.errors import ApiError
from beatra.storage.service import current_store, find_signed_artifact, served_mime

blp = Blueprint("content", __name__, url_prefix="/v1")


_QUERY = [
    {"name": "exp", "in": "query", "required": True, "schema": {"type": "string"},
     "description": "Expiry, Unix seconds (covered by the signature)."},
    {"name": "sig", "in": "query", "required": True, "schema": {"type": "string"},
     "description": "URL signature."},
]
_ERRORS = {403: "Missing, wrong or expired signature", 404: "Artifact no longer exists",
           416: "Range not satisfiable"}


def _document(func: Any) -> Any:
    """operationId, parameters and responses; no webargs: a bad or missing signature is a 403
    (not a 422), decided by the view."""
    for status, description in _ERRORS.items():
        func = blp.alt_response(status, schema=ErrorResponseSchema, description=description,
                                headers=REQUEST_ID_HEADER)(func)
    for status, description in ((206, "Partial content (single byte range)"),
                                (304, "Not modified (If-None-Match)")):
        func = blp.alt_response(status, description=description, headers=REQUEST_ID_HEADER)(func)
    func = blp.response(200, description="The content, with its own Content-Type",
                        headers=REQUEST_ID_HEADER)(func)
    return blp.doc(operationId="get_content_v1_content__artifact_id__get",
                   parameters=[*_QUERY, _REQUEST_ID])(func)


def _filename(artifact_id: str, mime_type: str) -> str:
    ext = {"audio/mpeg": ".mp3", "audio/wav": ".wav", "image/jpeg": ".jpg",
           "text/plain": ".txt"}.get(mime_type) or mimetypes.guess_extension(mime_type) or ""
    return f"{artifact_id}{ext}"


@blp.route("/content/<artifact_id>", methods=["GET"])
@_document
def content(artifact_id: str) -> Response:
    """Artifact content (signed URL)

    The URLs in `cdn_url` and task outputs point here. No API key: the signature in the
    query string is the credential, valid until `exp`.
    """
    expires = request.args.get("exp")
    artifact = find_signed_artifact(artifact_id, expires, request.args.get("sig"))
    size, etag = artifact.size_bytes, artifact.sha256
    mime = served_mime(artifact)
    headers = {
        "Content-Type": mime,
        "Accept-Ranges": "bytes",
        "ETag": f'"{etag}"',
        "Cache-Control": f"private, max-age={max(0, int(expires or 0) - int(time.time()))}",
        "Content-Disposition": f'inline; filename="{_filename(artifact.id, artifact.mime_type)}"',
        # Served from the API's origin: never let a browser run it as a page.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    if etag in request.if_none_match:
        return Response(status=304, headers=headers)
    start, stop, status = 0, size, 200
    wanted = request.range
    if_range = request.if_range
    range_applies = wanted is not None and (
        not request.headers.get("If-Range") or if_range.etag == etag)
    if range_applies and wanted is not None and wanted.units == "bytes" and len(
            wanted.ranges) == 1:
        bounds = wanted.range_for_length(size)
        if bounds is None:
            raise ApiError(416, "range_not_satisfiable",
                           f"Range {request.headers.get('Range')!r} is outside the "
                           f"{size}-byte content.", headers={"Content-Range": f"bytes */{size}"})
        start, stop = bounds
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers["Content-Length"] = str(stop - start)
    # The DB session is released when this view returns; the generator only touches the store
    # (and opens nothing at all for HEAD, whose body Werkzeug never iterates).
    body = current_store().iter_range(etag, start, stop)
    return Response(body, status=status, headers=headers, direct_passthrough=True)
