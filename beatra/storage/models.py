"""The artifact row: one account's view of a content-addressed blob.

Blobs are shared underneath by sha256 (the store keeps one copy per content); rows are per
(account, sha256, purpose), so de-duplication never hands one account another account's row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from beatra.extensions import Model
from beatra.timeutil import utcnow

MEDIA_TYPES = ("image", "video", "audio", "text", "binary")
# The contract's upload purposes, plus the internal one for task outputs.
UPLOAD_PURPOSES = ("media_input", "reference_audio", "transcription_input", "voice_clone_source")
PURPOSES = (*UPLOAD_PURPOSES, "task_output")


class Artifact(Model):
    __tablename__ = "artifacts"
    __table_args__ = (
        UniqueConstraint("account_id", "sha256", "purpose",
                         name="uq_artifacts_account_sha256_purpose"),
        Index("ix_artifacts_account_id_created_at", "account_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # a bare ULID
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(127))
    media_type: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(32))
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # `metadata` is reserved on declarative classes, hence the attribute name.
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
