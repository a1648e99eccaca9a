"""Media inputs of task requests (MediaInputUrl / MediaInputArtifact / MediaInputDataUri) → one
of the caller's artifacts. Shared by image-to-image and reference-audio music.

- artifact: must belong to the caller; another account's id reads exactly like a missing one.
- data_uri: at most 256 KB encoded (the contract), base64 or percent-encoded, stored as an
  artifact.
- url: fetched under the SSRF rules (beatra.net) and re-hosted as an artifact; capped at the
  upload size limit, 30 s and the kind's content types.

Every refusal is a 422 whose `param` points at the offending field (e.g. `/image/url`,
`/extra_images/2/artifact_id`), where `param` is the pointer of the media input itself.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_to_bytes

from beatra.errors import ApiError, invalid
from beatra.net import FetchError, UnsafeUrl, safe_get
from beatra.storage.models import Artifact
from beatra.storage.service import get_artifact, save_artifact, settings

DATA_URI_MAX_CHARS = 256 * 1024
KIND_PURPOSE = {"image": "media_input", "audio": "reference_audio"}
# What a server may call the file; the bytes are sniffed afterwards anyway.
URL_CONTENT_TYPES = {
    "image": ("image/", "application/octet-stream", "binary/octet-stream"),
    "audio": ("audio/", "video/mp4", "video/webm", "video/ogg", "application/ogg",
              "application/octet-stream", "binary/octet-stream"),
}
URL_DEADLINE_SECONDS = 30.0


def resolve_media_input(account_id: str, spec: dict[str, Any], *, kind: str, param: str,
                        purpose: str | None = None) -> Artifact:
    """The artifact a media input names, after storing it if it came inline or by URL.

    `kind` is "image" or "audio"; `param` is the JSON Pointer of the input ("/image").
    Raises ApiError 422 (invalid_request) with `param` pointing inside the input.
    """
    if kind not in KIND_PURPOSE:
        raise ValueError(f"unknown media kind {kind!r}")
    if not isinstance(spec, dict):
        raise invalid("Media input must be an object with a 'type'.", param=param)
    purpose = purpose or KIND_PURPOSE[kind]
    kind_of = spec.get("type")
    if kind_of == "artifact":
        field = f"{param}/artifact_id"
        artifact = get_artifact(account_id, spec.get("artifact_id"))  # type: ignore[arg-type]
        if artifact is None:
            raise invalid("No such artifact.", param=field)
    elif kind_of == "data_uri":
        field = f"{param}/data"
        artifact = _from_data_uri(account_id, spec.get("data"), kind=kind, param=field,
                                  purpose=purpose)
    elif kind_of == "url":
        field = f"{param}/url"
        artifact = _from_url(account_id, spec.get("url"), kind=kind, param=field,
                             purpose=purpose)
    else:
        raise invalid("Media input type must be one of 'url', 'artifact', 'data_uri'.",
                      param=f"{param}/type")
    if artifact.media_type != kind:
        raise invalid(f"Expected {kind} content, got {artifact.mime_type} "
                      f"({artifact.media_type}).", param=field)
    return artifact


def _save_as(account_id: str, stream: Any, *, kind: str, param: str, purpose: str,
             max_bytes: int) -> Artifact:
    try:
        # Declaring the kind lets an audio-only MP4/WebM be taken as audio.
        artifact, _ = save_artifact(account_id, stream, purpose=purpose,
                                    declared_media_type=kind, max_bytes=max_bytes, param=param)
    except ApiError as err:
        if err.param == "/media_type":
            raise invalid(f"Expected {kind} content: {err.message}", param=param) from None
        raise
    return artifact


def decode_data_uri(data: Any, *, param: str) -> bytes:
    if not isinstance(data, str) or not data.startswith("data:"):
        raise invalid("Expected a data URI (data:<type>;base64,<data>).", param=param)
    if len(data) > DATA_URI_MAX_CHARS:
        raise invalid(f"Data URI is {len(data)} characters encoded; at most "
                      f"{DATA_URI_MAX_CHARS} (256 KB). Upload larger files via /v1/uploads.",
                      param=param)
    header, comma, payload = data[5:].partition(",")
    if not comma:
        raise invalid("Data URI has no ',' before its data.", param=param)
    if header.lower().endswith(";base64"):
        try:
            return base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise invalid("Data URI is not valid base64.", param=param) from None
    return unquote_to_bytes(payload)


def _from_data_uri(account_id: str, data: Any, *, kind: str, param: str,
                   purpose: str) -> Artifact:
    import io

    raw = decode_data_uri(data, param=param)
    return _save_as(account_id, io.BytesIO(raw), kind=kind, param=param, purpose=purpose,
                    max_bytes=DATA_URI_MAX_CHARS)


def _from_url(account_id: str, url: Any, *, kind: str, param: str, purpose: str) -> Artifact:
    if not isinstance(url, str) or not url:
        raise invalid("Expected an https URL.", param=param)
    max_bytes = settings().upload_max_bytes
    try:
        with safe_get(url, max_bytes=max_bytes, allowed_types=URL_CONTENT_TYPES[kind],
                      deadline_seconds=URL_DEADLINE_SECONDS) as fetched:
            return _save_as(account_id, fetched.file, kind=kind, param=param, purpose=purpose,
                            max_bytes=max_bytes)
    except UnsafeUrl as exc:
        raise invalid(f"URL not allowed: {exc}.", param=param) from None
    except FetchError as exc:
        raise invalid(f"Could not fetch the URL: {exc}.", param=param) from None
