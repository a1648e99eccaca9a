"""resolve_media_input: artifact ids, data URIs and URLs (re-hosted under the SSRF rules)."""

from __future__ import annotations

import base64
import io

import pytest

from beatra.errors import ApiError
from beatra.media_inputs import DATA_URI_MAX_CHARS, resolve_media_input
from beatra.sandbox.media import image_bytes, mp3_bytes, mp3_seconds, wav_bytes
from beatra.storage.service import save_artifact
from tests.unit.media_helpers import guard_connections, mp4_bytes, redirect, send, serve

PNG = image_bytes(32, 16, "png", seed=11)


@pytest.fixture(autouse=True)
def connections(monkeypatch):
    return guard_connections(monkeypatch)


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def resolve(app, account_id, spec, kind="image", param="/image"):
    with app.app_context():
        art = resolve_media_input(account_id, spec, kind=kind, param=param)
        return {"id": art.id, "media_type": art.media_type, "mime_type": art.mime_type,
                "width": art.width, "height": art.height, "duration_ms": art.duration_ms,
                "purpose": art.purpose, "account_id": art.account_id}


def refused(app, account_id, spec, kind="image", param="/image") -> ApiError:
    with pytest.raises(ApiError) as err:
        resolve(app, account_id, spec, kind, param)
    assert err.value.status == 422 and err.value.code == "invalid_request"
    return err.value


def test_own_artifact_resolves(app, account):
    with app.app_context():
        art, _ = save_artifact(account.account_id, io.BytesIO(PNG))
        art_id = art.id
    got = resolve(app, account.account_id, {"type": "artifact", "artifact_id": art_id})
    assert (got["id"], got["width"], got["height"]) == (art_id, 32, 16)


def test_foreign_artifact_reads_exactly_like_a_missing_one(app, make_account):
    alice, bob = make_account(), make_account()
    with app.app_context():
        art, _ = save_artifact(alice.account_id, io.BytesIO(PNG))
        art_id = art.id
    foreign = refused(app, bob.account_id, {"type": "artifact", "artifact_id": art_id},
                      param="/extra_images/2")
    missing = refused(app, bob.account_id, {"type": "artifact", "artifact_id": "01NOPE"},
                      param="/extra_images/2")
    assert (foreign.message, foreign.param) == (missing.message, missing.param)
    assert foreign.param == "/extra_images/2/artifact_id"
    assert art_id not in foreign.message


def test_wrong_kind_is_refused(app, account):
    with app.app_context():
        art, _ = save_artifact(account.account_id, io.BytesIO(wav_bytes(0.1, 8000, 1)))
        art_id = art.id
    err = refused(app, account.account_id, {"type": "artifact", "artifact_id": art_id})
    assert err.param == "/image/artifact_id" and "image" in err.message
    err = refused(app, account.account_id, {"type": "data_uri", "data": data_uri(PNG)},
                  kind="audio", param="/reference_audio")
    assert err.param == "/reference_audio/data"


def test_data_uri_image_and_audio(app, account):
    img = resolve(app, account.account_id, {"type": "data_uri", "data": data_uri(PNG)})
    assert (img["media_type"], img["width"], img["purpose"]) == ("image", 32, "media_input")
    mp3 = mp3_bytes(1.0)
    audio = resolve(app, account.account_id,
                    {"type": "data_uri", "data": data_uri(mp3, "audio/mpeg")},
                    kind="audio", param="/reference_audio")
    assert (audio["mime_type"], audio["purpose"]) == ("audio/mpeg", "reference_audio")
    assert audio["duration_ms"] == round(mp3_seconds(1.0) * 1000)  # whole 1152-sample frames
    # an audio-only MP4 counts as audio when audio is expected
    m4 = resolve(app, account.account_id, {"type": "data_uri", "data": data_uri(mp4_bytes(900))},
                 kind="audio", param="/reference_audio")
    assert (m4["media_type"], m4["mime_type"]) == ("audio", "audio/mp4")


def test_data_uri_limits_and_format(app, account):
    big = data_uri(b"\x89PNG\r\n\x1a\n" + bytes(200 * 1024))
    assert len(big) > DATA_URI_MAX_CHARS
    err = refused(app, account.account_id, {"type": "data_uri", "data": big})
    assert err.param == "/image/data" and "256 KB" in err.message
    for bad in ("data:image/png;base64,@@@@", "image/png;base64,AAAA", "data:image/png", 42):
        assert refused(app, account.account_id, {"type": "data_uri", "data": bad}).param == (
            "/image/data")
    # percent-encoded (non-base64) data URIs are data URIs too
    text = refused(app, account.account_id, {"type": "data_uri", "data": "data:,hello%20world"})
    assert "text" in text.message


def test_bad_specs(app, account):
    assert refused(app, account.account_id, {"type": "ftp"}).param == "/image/type"
    assert refused(app, account.account_id, "not an object").param == "/image"
    assert refused(app, account.account_id, {"type": "url"}).param == "/image/url"


def test_url_input_is_fetched_and_rehosted_when_allowlisted(make_app, connections):
    app = make_app(net_allowlist="127.0.0.1")
    acct = _account(app)
    with serve({"/cat.png": send(PNG, "image/png"),
                "/hop": redirect("/cat.png")}) as srv:
        got = resolve(app, acct, {"type": "url", "url": srv.url("/hop")})
        again = resolve(app, acct, {"type": "url", "url": srv.url("/cat.png")})
    assert (got["media_type"], got["width"], got["height"]) == ("image", 32, 16)
    assert got["account_id"] == acct
    assert again["id"] == got["id"]  # same bytes, same artifact
    with app.app_context():
        from beatra.storage.service import get_artifact, open_artifact

        with open_artifact(get_artifact(acct, got["id"])) as f:
            assert f.read() == PNG
    assert {host for host, _ in connections} == {"127.0.0.1"}


def test_url_refusals_are_422_at_the_url(make_app, connections):
    app = make_app(net_allowlist="127.0.0.1")
    acct = _account(app)
    with serve({"/page": send(b"<html></html>", "text/html"),
                "/evil": redirect("http://169.254.169.254/latest/meta-data/"),
                "/fake.png": send(b"this is not a png", "image/png"),
                "/song.wav": send(wav_bytes(0.1, 8000, 1), "audio/wav"),
                "/song.bin": send(wav_bytes(0.1, 8000, 1))}) as srv:
        for path, expect in (("/page", "text/html"), ("/evil", "not a public address"),
                             ("/fake.png", "Expected image"), ("/song.bin", "Expected image"),
                             ("/song.wav", "'audio/wav' is not accepted"),
                             ("/missing", "404")):
            err = refused(app, acct, {"type": "url", "url": srv.url(path)})
            assert err.param == "/image/url"
            assert expect in err.message, (path, err.message)
    for url in ("https://127.0.0.2/x.png", "https://10.0.0.1/x.png", "https://[::1]/x.png",
                "https://169.254.169.254/x.png", "http://8.8.8.8/x.png"):
        err = refused(app, acct, {"type": "url", "url": url})
        assert (err.param, err.message.startswith("URL not allowed")) == ("/image/url", True)
    assert {host for host, _ in connections} == {"127.0.0.1"}


def test_without_allowlist_loopback_urls_are_refused(app, account, connections):
    with serve({"/cat.png": send(PNG, "image/png")}) as srv:
        err = refused(app, account.account_id, {"type": "url", "url": srv.url("/cat.png")})
    assert err.param == "/image/url"
    assert connections == []


def _account(app) -> str:
    from beatra.accounts import service

    with app.app_context():
        return service.create_account("media").id
