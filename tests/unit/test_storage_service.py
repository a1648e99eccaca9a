"""Artifact service, stores and sniffing below the HTTP layer."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from beatra.errors import ApiError
from beatra.sandbox.media import image_bytes, mp3_bytes, wav_bytes
from beatra.storage import service
from beatra.storage.sniff import sniff
from beatra.storage.stores import FileStore, S3Store, store_from_url
from tests.unit.media_helpers import mp4_bytes


@pytest.mark.parametrize(("data", "mime", "media"), [
    (image_bytes(4, 4, "png"), "image/png", "image"),
    (image_bytes(4, 4, "jpeg"), "image/jpeg", "image"),
    (image_bytes(4, 4, "webp"), "image/webp", "image"),
    (b"GIF89a" + bytes(20), "image/gif", "image"),
    (wav_bytes(0.1, 8000, 1), "audio/wav", "audio"),
    (mp3_bytes(0.2), "audio/mpeg", "audio"),
    (b"ID3\x04\x00" + bytes(40), "audio/mpeg", "audio"),
    (mp3_bytes(0.2, 22050, 64000), "audio/mpeg", "audio"),  # MPEG-2 layer III
    (b"OggS\x00\x02" + bytes(40), "audio/ogg", "audio"),
    (b"fLaC" + bytes(40), "audio/flac", "audio"),
    (mp4_bytes(100), "video/mp4", "video"),
    (mp4_bytes(100, brand=b"M4A "), "audio/mp4", "audio"),
    (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x84webm" + bytes(20), "video/webm", "video"),
    (b"%PDF-1.7\n", "application/pdf", "binary"),
    (b'{"a": 1}\n', "text/plain", "text"),
    ("naïve ☃\n".encode(), "text/plain", "text"),
    (b"\xff\xfb" + bytes(30), "application/octet-stream", "binary"),  # one lone sync: not mp3
    (bytes(range(256)), "application/octet-stream", "binary"),
])
def test_sniff(data, mime, media):
    got = sniff(data[:8192])
    assert (got.mime_type, got.media_type) == (mime, media)


def test_ambiguous_containers_take_the_declared_kind():
    mp4 = sniff(mp4_bytes(10))
    assert mp4.accepts("audio") and mp4.accepts("video") and mp4.accepts("binary")
    assert not mp4.accepts("image")
    assert mp4.as_declared("audio").mime_type == "audio/mp4"
    assert not sniff(image_bytes(4, 4, "png")).accepts("audio")


def test_store_from_url():
    assert isinstance(store_from_url("file:///tmp/x"), FileStore)
    assert store_from_url("file://./var/artifacts").root == Path("./var/artifacts").resolve()
    s3 = store_from_url("s3://bucket/some/prefix/")
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.key_of("ab" * 32)) == ("bucket", f"some/prefix/ab/ab/{'ab' * 32}")
    assert store_from_url("s3://bucket").key_of("cd" * 32).startswith("cd/cd/")
    for bad in ("ftp://x", "s3://", "file://"):
        with pytest.raises(ValueError):
            store_from_url(bad)


def test_file_store_commit_is_atomic_and_idempotent(tmp_path):
    store = FileStore(tmp_path)
    sha = "ef" * 32
    with store.staging() as staged:
        staged.file.write(b"hello")
        assert not store.path_of(sha).exists()  # nothing visible while writing
        store.commit(staged, sha, "text/plain")
    assert store.path_of(sha).read_bytes() == b"hello"
    with store.staging() as staged:
        staged.file.write(b"hello")
        store.commit(staged, sha, "text/plain")  # same content: a no-op
    assert b"".join(store.iter_range(sha, 1, 4)) == b"ell"
    with store.open(sha) as f:
        assert f.read() == b"hello"
    assert list((tmp_path / ".staging").iterdir()) == []


def test_file_store_staging_is_removed_on_error(tmp_path):
    store = FileStore(tmp_path)
    with pytest.raises(RuntimeError), store.staging() as staged:
        staged.file.write(b"partial")
        raise RuntimeError("client went away")
    assert list((tmp_path / ".staging").iterdir()) == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_save_bytes_get_open_and_view(app, make_account):
    alice, bob = make_account(), make_account()
    png = image_bytes(12, 8, "png")
    with app.app_context():
        art = service.save_bytes(alice.account_id, png, metadata={"task": "t1"})
        assert (art.purpose, art.width, art.height, art.meta) == ("task_output", 12, 8,
                                                                  {"task": "t1"})
        assert service.get_artifact(alice.account_id, art.id).id == art.id
        assert service.get_artifact(bob.account_id, art.id) is None  # scoped to the owner
        assert service.get_artifact(alice.account_id, "nope") is None
        with service.open_artifact(art) as f:
            assert f.read() == png
        view = service.artifact_view(art)
        assert view["artifact_id"] == art.id and view["width"] == 12
        assert view["cdn_url"].startswith("http://beatra.test/v1/content/")
        # the same output again is the same artifact
        assert service.save_bytes(alice.account_id, png, metadata={"task": "t2"}).id == art.id
        with pytest.raises(ApiError) as err:
            service.save_bytes(alice.account_id, b"\x89PNG\r\n\x1a\n garbage")
        assert err.value.status == 422


def test_concurrent_duplicate_returns_the_winner(app, account, monkeypatch):
    """Two requests of one account race with the same bytes: the unique constraint picks one
    row and the loser answers with it instead of failing."""
    data = wav_bytes(0.1, 8000, 1)
    with app.app_context():
        winner, created = service.save_artifact(account.account_id, io.BytesIO(data))
        assert created
        real_find = service._find
        calls = []

        def blind_first(*args):
            calls.append(args)
            return None if len(calls) == 1 else real_find(*args)

        monkeypatch.setattr(service, "_find", blind_first)
        loser, created = service.save_artifact(account.account_id, io.BytesIO(data))
        assert (loser.id, created) == (winner.id, False)
        assert len(calls) == 2


def test_stream_over_max_bytes_is_413_and_stores_nothing(app, account, tmp_path):
    with app.app_context():
        with pytest.raises(ApiError) as err:
            service.save_artifact(account.account_id, io.BytesIO(b"x" * 101), max_bytes=100)
        assert (err.value.status, err.value.code) == (413, "payload_too_large")
    root = tmp_path / "artifacts"
    assert [p for p in root.rglob("*") if p.is_file()] == []
