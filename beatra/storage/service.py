"""Artifacts for the rest of beatra: save (streamed, hashed, sniffed, probed), look up, read,
and hand out content URLs.

Rows are per (account, sha256, purpose); blobs are shared by sha256 underneath. Saving the same
bytes again for the same account and purpose returns the existing row (created=False); another
account always gets a row of its own, so nothing about one account's files reaches another.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from typing import IO, Any, BinaryIO

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from beatra.config import Settings, current_settings
from beatra.errors import ApiError, invalid
from beatra.extensions import db
from beatra.ids import ulid
from beatra.pagination import decode_cursor, encode_cursor
from beatra.storage import signing
from beatra.storage.models import MEDIA_TYPES, PURPOSES, Artifact
from beatra.storage.probe import ProbeError, probe
from beatra.storage.sniff import HEAD_BYTES, sniff
from beatra.storage.stores import CHUNK, BlobStore, S3Store, store_from_url
from beatra.timeutil import isoformat

STORE_KEY = "beatra.store"
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_TTL_SECONDS = 24 * 3600


def settings() -> Settings:
    return current_settings()


def current_store() -> BlobStore:
    store = current_app.extensions.get(STORE_KEY)
    if store is None:
        store = store_from_url(settings().storage_url)
        current_app.extensions[STORE_KEY] = store
    return store


def prepare_store(app: Flask) -> None:
    """At process start (web worker, task worker): an S3 bucket that is missing is created
    when BEATRA_S3_CREATE_BUCKET allows it (the default), or start-up stops with a reason."""
    with app.app_context():
        store = current_store()
        if isinstance(store, S3Store):
            store.ensure_bucket(create=settings().s3_create_bucket)


def too_large(max_bytes: int, param: str | None = "/file") -> ApiError:
    return ApiError(413, "payload_too_large",
                    f"The file is larger than the {_human(max_bytes)} limit.", param=param,
                    details={"max_bytes": max_bytes})


def _human(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n % (1024 * 1024) == 0 else f"{n} bytes"


def _copy_hashing(src: BinaryIO, dst: IO[bytes], max_bytes: int, param: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            return digest.hexdigest(), size
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes, param)
        digest.update(chunk)
        dst.write(chunk)


def _find(account_id: str, sha256: str, purpose: str) -> Artifact | None:
    return db.session.scalars(
        select(Artifact).where(Artifact.account_id == account_id, Artifact.sha256 == sha256,
                               Artifact.purpose == purpose)
    ).first()


def save_artifact(
    account_id: str,
    stream: BinaryIO,
    *,
    purpose: str = "media_input",
    declared_media_type: str | None = None,
    metadata: dict | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    param: str = "/file",
) -> tuple[Artifact, bool]:
    """Stream to the store while hashing; (artifact, created). Nothing is stored on error.

    Raises 413 payload_too_large past `max_bytes`, 422 for empty or unreadable media (at
    `param`) and for a declared media type the bytes contradict (at /media_type).
    """
    if purpose not in PURPOSES:
        raise invalid(f"purpose must be one of {', '.join(PURPOSES)}.", param="/purpose")
    if declared_media_type is not None and declared_media_type not in MEDIA_TYPES:
        raise invalid(f"media_type must be one of {', '.join(MEDIA_TYPES)}.", param="/media_type")
    store = current_store()
    with store.staging() as staged:
        sha256, size = _copy_hashing(stream, staged.file, max_bytes, param)
        if size == 0:
            raise invalid("The file is empty.", param=param)
        staged.file.flush()
        staged.file.seek(0)
        sniffed = sniff(staged.file.read(HEAD_BYTES))
        if declared_media_type and not sniffed.accepts(declared_media_type):
            raise invalid(
                f"media_type is '{declared_media_type}' but the content is {sniffed.mime_type} "
                f"({sniffed.media_type}).",
                param="/media_type",
            )
        sniffed = sniffed.as_declared(declared_media_type)
        existing = _find(account_id, sha256, purpose)
        if existing is not None:
            # The row may predate a switch of BEATRA_STORAGE_URL: make sure the current store
            # holds the bytes (commit is a no-op when it does: one stat or HEAD).
            store.commit(staged, sha256, existing.mime_type)
            return existing, False
        try:
            probed = probe(staged.path, sniffed.media_type, sniffed.mime_type)
        except ProbeError as exc:
            raise invalid(f"The content looks like {sniffed.mime_type} but {exc}.",
                          param=param) from None
        store.commit(staged, sha256, sniffed.mime_type)
    artifact = Artifact(
        id=ulid(), account_id=account_id, sha256=sha256, size_bytes=size,
        mime_type=sniffed.mime_type, media_type=sniffed.media_type, purpose=purpose,
        width=probed.width, height=probed.height, duration_ms=probed.duration_ms,
        meta=metadata or None,
    )
    db.session.add(artifact)
    try:
        db.session.commit()
    except IntegrityError:
        # The same account saved the same bytes concurrently: theirs is as good as ours.
        db.session.rollback()
        existing = _find(account_id, sha256, purpose)
        if existing is None:
            raise
        return existing, False
    return artifact, True


def save_bytes(account_id: str, data: bytes, *, purpose: str = "task_output",
               metadata: dict | None = None) -> Artifact:
    """Store in-memory bytes (task outputs). Raises ApiError 422 if they are unreadable media."""
    artifact, _ = save_artifact(account_id, io.BytesIO(data), purpose=purpose, metadata=metadata,
                                max_bytes=max(len(data), 1), param="/data")
    return artifact


def get_artifact(account_id: str, artifact_id: str) -> Artifact | None:
    """The caller's artifact, or None (another account's id is exactly like a missing one)."""
    if not isinstance(artifact_id, str) or not artifact_id or len(artifact_id) > 40:
        return None
    return db.session.scalars(
        select(Artifact).where(Artifact.id == artifact_id, Artifact.account_id == account_id)
    ).first()


def list_uploads(account_id: str, *, limit: int = 20, cursor: str | None = None,
                 purpose: str | None = None) -> tuple[list[Artifact], str | None]:
    """The account's uploads (never task outputs), newest first, keyset-paged on the id (a
    ULID: creation order) so new uploads never shift later pages. (rows, next_cursor)."""
    query = select(Artifact).where(Artifact.account_id == account_id)
    if purpose is not None:
        query = query.where(Artifact.purpose == purpose)
    else:
        query = query.where(Artifact.purpose != "task_output")
    if cursor:
        query = query.where(Artifact.id < decode_cursor(cursor, "desc"))
    rows = list(db.session.scalars(query.order_by(Artifact.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor("desc", rows[-1].id) if more and rows else None


def find_signed_artifact(artifact_id: str, expires: str | None, sig: str | None) -> Artifact:
    """The artifact a signed content URL names: 403 forbidden unless signed and unexpired."""
    reason = signing.verify(settings(), artifact_id, expires, sig)
    if reason is not None:
        raise ApiError(403, "forbidden", f"Content URL is not valid ({reason}); "
                       "fetch a fresh URL from the API.")
    artifact = db.session.get(Artifact, artifact_id)
    if artifact is None:
        raise ApiError(404, "not_found", "Resource not found.")
    return artifact


def open_artifact(artifact: Artifact) -> contextlib.AbstractContextManager[BinaryIO]:
    """Streaming read of the whole content."""
    return current_store().open(artifact.sha256)


def served_mime(artifact: Artifact) -> str:
    return f"{artifact.mime_type}; charset=utf-8" if artifact.media_type == "text" else (
        artifact.mime_type)


def content_url(artifact: Artifact, *, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    """A URL anyone holding it may GET until it expires: presigned S3, else our signed route."""
    presigned = current_store().presigned_url(artifact.sha256, ttl_seconds, served_mime(artifact))
    if presigned:
        return presigned
    cfg = settings()
    expires = signing.expiry(ttl_seconds)
    sig = signing.sign(cfg, artifact.id, expires)
    return f"{cfg.public_url}/v1/content/{artifact.id}?exp={expires}&sig={sig}"


def artifact_view(artifact: Artifact) -> dict[str, Any]:
    """The contract's UploadResponse fields (also used for task output items)."""
    return {
        "object": "upload",
        "artifact_id": artifact.id,
        "cdn_url": content_url(artifact),
        "mime_type": artifact.mime_type,
        "media_type": artifact.media_type,
        "size_bytes": artifact.size_bytes,
        "width": artifact.width,
        "height": artifact.height,
        "duration_ms": artifact.duration_ms,
        "checksum_sha256": artifact.sha256,
        "created_at": isoformat(artifact.created_at),
    }
