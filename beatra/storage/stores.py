"""Blob stores: where artifact bytes live, addressed by sha256. Chosen by BEATRA_STORAGE_URL.

- `file://PATH` (default `file://./var/artifacts`): PATH/ab/cd/<sha256>.
- `s3://BUCKET[/PREFIX]`: S3-compatible; endpoint and credentials from the standard AWS
  environment variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
  AWS_DEFAULT_REGION).

Writes go through a local staging file (hashed and probed there), then `commit` publishes it
under its hash atomically: a rename on a filesystem, a completed (multipart) PUT on S3. A reader
never sees half an object. Content is immutable, so committing a hash that exists is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from beatra.config import S3_CUSTOM_ENDPOINT

CHUNK = 256 * 1024
S3_MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer


class BlobMissing(LookupError):
    """The row exists but the store has no bytes for its hash."""


@dataclass
class Staged:
    """A local file being written; removed on exit unless a store took it."""

    path: Path
    file: IO[bytes]


class BlobStore(Protocol):
    def staging(self) -> contextlib.AbstractContextManager[Staged]: ...

    def commit(self, staged: Staged, sha256: str, mime_type: str) -> None: ...

    def open(self, sha256: str) -> contextlib.AbstractContextManager[BinaryIO]: ...

    def iter_range(self, sha256: str, start: int, stop: int) -> Iterator[bytes]: ...

    def presigned_url(self, sha256: str, ttl_seconds: int, mime_type: str) -> str | None: ...

    def check(self) -> None:
        """Raise unless the store can be written to now (readiness)."""
        ...


@contextlib.contextmanager
def _staging_in(directory: Path) -> Iterator[Staged]:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix="stage-")
    path = Path(name)
    with os.fdopen(fd, "w+b") as f:
        try:
            yield Staged(path, f)
        finally:
            path.unlink(missing_ok=True)  # a no-op once commit moved it into place


def _fan_out(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def __repr__(self) -> str:
        return f"FileStore({self.root})"

    def path_of(self, sha256: str) -> Path:
        return self.root / _fan_out(sha256)

    def staging(self) -> contextlib.AbstractContextManager[Staged]:
        # Same filesystem as the blobs, so commit is a rename, not a copy.
        return _staging_in(self.root / ".staging")

    def commit(self, staged: Staged, sha256: str, mime_type: str) -> None:
        target = self.path_of(sha256)
        if target.exists():
            return
        staged.file.flush()
        os.fsync(staged.file.fileno())  # the row that points here is committed right after
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, target)  # atomic; a concurrent writer of the same hash is equal

    @contextlib.contextmanager
    def open(self, sha256: str) -> Iterator[BinaryIO]:
        try:
            f = open(self.path_of(sha256), "rb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        with f:
            yield f

    def iter_range(self, sha256: str, start: int, stop: int) -> Iterator[bytes]:
        with self.open(sha256) as f:
            f.seek(start)
            remaining = stop - start
            while remaining > 0:
                chunk = f.read(min(CHUNK, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    def presigned_url(self, sha256: str, ttl_seconds: int, mime_type: str) -> str | None:
        return None  # served by beatra's signed content route

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise PermissionError(f"{self.root} is not writable")


class S3Store:
    def __init__(self, bucket: str, prefix: str = "", client: Any = None,
                 staging_dir: Path | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._client = client
        self.staging_dir = staging_dir or Path(tempfile.gettempdir()) / "beatra-staging"

    def __repr__(self) -> str:
        return f"S3Store(s3://{self.bucket}/{self.prefix})"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_s3_client()
        return self._client

    def key_of(self, sha256: str) -> str:
        return f"{self.prefix}{_fan_out(sha256)}"

    def staging(self) -> contextlib.AbstractContextManager[Staged]:
        return _staging_in(self.staging_dir)

    def exists(self, sha256: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key_of(sha256))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def commit(self, staged: Staged, sha256: str, mime_type: str) -> None:
        if self.exists(sha256):
            return
        staged.file.flush()
        # upload_file switches to multipart above 8 MB; the key appears only when complete.
        self.client.upload_file(str(staged.path), self.bucket, self.key_of(sha256),
                                ExtraArgs={"ContentType": mime_type})

    def _get(self, sha256: str, **extra: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key_of(sha256), **extra)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise BlobMissing(sha256) from None
            raise

    @contextlib.contextmanager
    def open(self, sha256: str) -> Iterator[BinaryIO]:
        body = self._get(sha256)["Body"]
        try:
            yield body
        finally:
            body.close()

    def iter_range(self, sha256: str, start: int, stop: int) -> Iterator[bytes]:
        if stop <= start:
            return
        body = self._get(sha256, Range=f"bytes={start}-{stop - 1}")["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def presigned_url(self, sha256: str, ttl_seconds: int, mime_type: str) -> str | None:
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.key_of(sha256),
                    "ResponseContentType": mime_type},
            ExpiresIn=max(1, min(ttl_seconds, S3_MAX_PRESIGN_SECONDS)),
        )


    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def ensure_bucket(self, *, create: bool) -> None:
        """At start-up: the bucket exists, or is created when `create`; otherwise SystemExit
        with a one-line reason (not a traceback per request later)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise SystemExit(f"S3 bucket {self.bucket!r} is not usable: {code} "
                                 f"({exc.response.get('Error', {}).get('Message', '')})") from None
        except BotoCoreError as exc:
            raise SystemExit(f"S3 bucket {self.bucket!r} is not reachable: {exc}") from None
        if not create:
            raise SystemExit(f"S3 bucket {self.bucket!r} does not exist; create it or set "
                             "BEATRA_S3_CREATE_BUCKET=1")
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):  # a racing peer
                raise SystemExit(f"S3 bucket {self.bucket!r} could not be created: {code}"
                                 ) from None


def make_s3_client() -> Any:
    """boto3 reads AWS_ENDPOINT_URL, credentials and region from the environment itself."""
    import boto3
    from botocore.config import Config

    style = "path" if S3_CUSTOM_ENDPOINT else "auto"
    config = Config(signature_version="s3v4", s3={"addressing_style": style},
                    retries={"max_attempts": 3, "mode": "standard"})
    return boto3.client("s3", config=config)


def store_from_url(url: str) -> FileStore | S3Store:
    parts = urlsplit(url)
    if parts.scheme == "file":
        # file://./var/artifacts is relative (netloc "."); file:///abs/path is absolute.
        raw = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not raw:
            raise ValueError(f"BEATRA_STORAGE_URL has no path: {url!r}")
        return FileStore(Path(raw))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"BEATRA_STORAGE_URL names no bucket: {url!r}")
        return S3Store(parts.netloc, parts.path)
    raise ValueError(f"BEATRA_STORAGE_URL must be file://PATH or s3://BUCKET[/PREFIX]: {url!r}")
