"""POST /v1/uploads: probing, de-duplication, isolation, limits and validation."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from beatra.extensions import db
from beatra.sandbox.media import image_bytes, mp3_bytes, wav_bytes
from beatra.storage.models import Artifact
from tests.conftest import ApiAccount
from tests.unit.media_helpers import ZeroStream, mp4_bytes, png_header_claiming

MB = 1024 * 1024


def upload(client, account: ApiAccount, data: bytes, **form):
    body = {"file": (io.BytesIO(data), form.pop("filename", "upload.bin")), **form}
    return client.post("/v1/uploads", headers=account.headers, data=body)


def blobs(tmp_path: Path) -> list[Path]:
    root = tmp_path / "artifacts"
    return [p for p in root.rglob("*") if p.is_file() and ".staging" not in p.parts]


def staging_files(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "artifacts" / ".staging").glob("*"))


def artifact_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Artifact))


def new_account(app) -> ApiAccount:
    from beatra.accounts import service

    with app.app_context():
        acct = service.create_account("uploader")
        key, secret = service.create_key(acct.id)
        return ApiAccount(acct.id, secret, key.id)


@pytest.mark.parametrize(("name", "data", "mime", "media", "probe"), [
    ("png", image_bytes(64, 32, "png"), "image/png", "image", (64, 32, None)),
    ("jpeg", image_bytes(40, 30, "jpeg"), "image/jpeg", "image", (40, 30, None)),
    ("webp", image_bytes(20, 10, "webp"), "image/webp", "image", (20, 10, None)),
    ("wav", wav_bytes(1.5, 22050, 1), "audio/wav", "audio", (None, None, 1500)),
    ("mp3", mp3_bytes(2.0), "audio/mpeg", "audio", (None, None, 2011)),  # 77 frames of 1152
    ("mp4", mp4_bytes(2500), "video/mp4", "video", (None, None, 2500)),
    ("txt", "héllo, world\n".encode(), "text/plain", "text", (None, None, None)),
    ("bin", bytes(range(256)) * 4, "application/octet-stream", "binary", (None, None, None)),
])
def test_upload_sniffs_and_probes(client, account, name, data, mime, media, probe):
    resp = upload(client, account, data, filename=f"x.{name}")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["mime_type"], body["media_type"]) == (mime, media)
    assert (body["width"], body["height"], body["duration_ms"]) == probe
    assert body["size_bytes"] == len(data)
    assert body["object"] == "upload"
    import hashlib

    assert body["checksum_sha256"] == hashlib.sha256(data).hexdigest()
    assert body["created_at"].endswith("Z")
    assert body["cdn_url"].startswith(f"http://beatra.test/v1/content/{body['artifact_id']}?")
    assert resp.headers["X-Request-Id"]


def test_mp4_with_moov_last_and_version1_mvhd(client, account):
    body = upload(client, account, mp4_bytes(1500, version=1, moov_last=True)).get_json()
    assert body["duration_ms"] == 1500


def test_same_bytes_twice_is_201_then_200_with_the_same_artifact(client, account, tmp_path):
    data = image_bytes(16, 16, "png", seed=7)
    first = upload(client, account, data)
    second = upload(client, account, data)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.get_json()["artifact_id"] == first.get_json()["artifact_id"]
    assert len(blobs(tmp_path)) == 1


def test_another_purpose_is_another_artifact(client, account):
    data = wav_bytes(0.5, 8000, 1)
    a = upload(client, account, data)
    b = upload(client, account, data, purpose="reference_audio")
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.get_json()["artifact_id"] != b.get_json()["artifact_id"]


def test_two_accounts_same_bytes_each_get_their_own_artifact(client, make_account, tmp_path):
    alice, bob = make_account(), make_account()
    data = image_bytes(24, 24, "jpeg", seed=3)
    a = upload(client, alice, data)
    b = upload(client, bob, data)
    assert (a.status_code, b.status_code) == (201, 201)  # bob learns nothing about alice
    a_id, b_id = a.get_json()["artifact_id"], b.get_json()["artifact_id"]
    assert a_id != b_id
    assert len(blobs(tmp_path)) == 1  # stored once underneath
    again = upload(client, alice, data)
    assert (again.status_code, again.get_json()["artifact_id"]) == (200, a_id)
    # each URL serves the bytes, no API key needed
    for url in (a.get_json()["cdn_url"], b.get_json()["cdn_url"]):
        got = client.get(url.removeprefix("http://beatra.test"))
        assert got.status_code == 200 and got.data == data


def test_declared_media_type_must_match_the_bytes(client, account):
    resp = upload(client, account, image_bytes(8, 8, "png"), media_type="audio")
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["param"] == "/media_type"
    assert "image/png" in err["message"]
    ok = upload(client, account, image_bytes(8, 8, "png"), media_type="image")
    assert ok.status_code == 201
    # "binary" fits anything; the response still says what the bytes are
    anyway = upload(client, account, image_bytes(9, 9, "png"), media_type="binary")
    assert anyway.get_json()["media_type"] == "image"


def test_audio_only_mp4_may_be_declared_audio(client, account):
    body = upload(client, account, mp4_bytes(800), media_type="audio").get_json()
    assert (body["media_type"], body["mime_type"], body["duration_ms"]) == (
        "audio", "audio/mp4", 800)


@pytest.mark.parametrize(("form", "param"), [
    ({"purpose": "task_output"}, "/purpose"),  # internal purpose is not for uploads
    ({"purpose": "selfie"}, "/purpose"),
    ({"media_type": "document"}, "/media_type"),
    ({"metadata": "{not json"}, "/metadata"),
    ({"metadata": "[1, 2]"}, "/metadata"),
    ({"metadata": "x" * 20000}, "/metadata"),
])
def test_bad_form_fields_are_422_and_store_nothing(app, client, account, tmp_path, form, param):
    resp = upload(client, account, image_bytes(8, 8, "png"), **form)
    assert resp.status_code == 422
    assert resp.get_json()["error"]["param"] == param
    assert resp.get_json()["error"]["code"] == "invalid_request"
    assert blobs(tmp_path) == [] and artifact_count(app) == 0


def test_metadata_object_is_kept(app, client, account):
    body = upload(client, account, image_bytes(8, 8, "png"),
                  metadata='{"label": "cat", "n": 2}').get_json()
    with app.app_context():
        assert db.session.get(Artifact, body["artifact_id"]).meta == {"label": "cat", "n": 2}


def test_missing_or_empty_file_is_422(client, account):
    missing = client.post("/v1/uploads", headers=account.headers, data={"purpose": "media_input"})
    assert missing.status_code == 422
    assert missing.get_json()["error"]["param"] == "/file"
    as_text = client.post("/v1/uploads", headers=account.headers, data={"file": "not a file"})
    assert as_text.status_code == 422 and as_text.get_json()["error"]["param"] == "/file"
    empty = upload(client, account, b"")
    assert empty.status_code == 422 and empty.get_json()["error"]["param"] == "/file"


def test_decompression_bomb_and_broken_media_are_refused(app, client, account, tmp_path):
    bomb = upload(client, account, png_header_claiming(100_000, 100_000))
    assert bomb.status_code == 422
    assert "pixels" in bomb.get_json()["error"]["message"]
    broken = upload(client, account, b"\x89PNG\r\n\x1a\n" + bytes(64))
    assert broken.status_code == 422 and broken.get_json()["error"]["param"] == "/file"
    bad_audio = upload(client, account, b"ID3" + bytes(200))
    assert bad_audio.status_code == 422
    assert blobs(tmp_path) == [] and staging_files(tmp_path) == []
    assert artifact_count(app) == 0


def test_requires_an_api_key(client):
    resp = client.post("/v1/uploads", data={"file": (io.BytesIO(b"hi"), "a.txt")})
    assert resp.status_code == 401


def _multipart(size: int, boundary: str = "beatraboundary") -> ZeroStream:
    prefix = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
              f"filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    suffix = f"\r\n--{boundary}--\r\n".encode()
    return ZeroStream(size, prefix, suffix)


def test_body_over_100mb_is_413_before_reading(app, client, account, tmp_path):
    stream = _multipart(100 * MB + 2 * MB)
    resp = client.post("/v1/uploads", headers=account.headers, input_stream=stream,
                       content_type="multipart/form-data; boundary=beatraboundary",
                       content_length=stream.total)
    assert resp.status_code == 413
    assert resp.get_json()["error"]["code"] == "payload_too_large"
    assert stream.pos == 0  # refused on the header, nothing was read
    assert blobs(tmp_path) == [] and artifact_count(app) == 0


def test_file_just_over_100mb_is_413_with_nothing_stored(app, client, account, tmp_path):
    # The body fits the multipart allowance, so it is parsed (spooled to disk) and streamed
    # into the store until the file itself passes 100 MB.
    stream = _multipart(100 * MB + 1)
    resp = client.post("/v1/uploads", headers=account.headers, input_stream=stream,
                       content_type="multipart/form-data; boundary=beatraboundary",
                       content_length=stream.total)
    assert resp.status_code == 413
    err = resp.get_json()["error"]
    assert (err["code"], err["param"]) == ("payload_too_large", "/file")
    assert stream.pos == stream.total  # the whole body was parsed; the file check refused it
    assert blobs(tmp_path) == [] and staging_files(tmp_path) == []
    assert artifact_count(app) == 0


def test_lowered_cap_is_enforced_for_the_file_and_a_chunked_body(make_app, tmp_path):
    app = make_app(upload_max_bytes=1000)
    client, acct = app.test_client(), new_account(app)
    assert upload(client, acct, b"a" * 1000).status_code == 201
    assert upload(client, acct, b"b" * 1001).status_code == 413
    # No Content-Length (chunked): Werkzeug stops reading at the cap + multipart allowance.
    stream = _multipart(3 * MB)
    resp = client.post("/v1/uploads", headers={**acct.headers, "Transfer-Encoding": "chunked"},
                       input_stream=stream,
                       content_type="multipart/form-data; boundary=beatraboundary",
                       environ_base={"wsgi.input_terminated": True})
    assert resp.status_code == 413
    assert resp.get_json()["error"]["code"] == "payload_too_large"
    assert stream.pos < stream.total
    assert len(blobs(tmp_path)) == 1 and artifact_count(app) == 1
