"""Signed content URLs: round trip, HEAD, ranges, conditional GET, tampering and expiry."""

from __future__ import annotations

import io
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from beatra.sandbox.media import image_bytes, wav_bytes
from beatra.storage import signing

DATA = wav_bytes(0.25, 8000, 1)


@pytest.fixture
def uploaded(client, account) -> dict:
    resp = client.post("/v1/uploads", headers=account.headers,
                       data={"file": (io.BytesIO(DATA), "a.wav")})
    assert resp.status_code == 201
    return resp.get_json()


def path_of(url: str) -> str:
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("http", "beatra.test")  # BEATRA_PUBLIC_URL
    return f"{parts.path}?{parts.query}"


def test_round_trip_without_api_key(client, uploaded):
    resp = client.get(path_of(uploaded["cdn_url"]))
    assert resp.status_code == 200
    assert resp.data == DATA
    assert resp.headers["Content-Type"] == "audio/wav"
    assert resp.headers["Content-Length"] == str(len(DATA))
    assert resp.headers["ETag"] == f'"{uploaded["checksum_sha256"]}"'
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Cache-Control"].startswith("private")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Request-Id"]


def test_head_has_the_headers_and_no_body(client, uploaded):
    resp = client.head(path_of(uploaded["cdn_url"]))
    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == str(len(DATA))
    assert resp.headers["Content-Type"] == "audio/wav"
    assert resp.data == b""


@pytest.mark.parametrize(("header", "start", "stop"), [
    ("bytes=0-99", 0, 100),
    ("bytes=100-", 100, len(DATA)),
    ("bytes=-44", len(DATA) - 44, len(DATA)),
    (f"bytes=10-{len(DATA) * 2}", 10, len(DATA)),  # clipped to the end
])
def test_single_range_is_206(client, uploaded, header, start, stop):
    resp = client.get(path_of(uploaded["cdn_url"]), headers={"Range": header})
    assert resp.status_code == 206
    assert resp.data == DATA[start:stop]
    assert resp.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{len(DATA)}"
    assert resp.headers["Content-Length"] == str(stop - start)


def test_unsatisfiable_range_is_416_envelope(client, uploaded):
    resp = client.get(path_of(uploaded["cdn_url"]), headers={"Range": f"bytes={len(DATA)}-"})
    assert resp.status_code == 416
    assert resp.get_json()["error"]["code"] == "range_not_satisfiable"
    assert resp.headers["Content-Range"] == f"bytes */{len(DATA)}"


def test_multiple_ranges_or_stale_if_range_get_the_whole_body(client, uploaded):
    url = path_of(uploaded["cdn_url"])
    multi = client.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert (multi.status_code, multi.data) == (200, DATA)
    stale = client.get(url, headers={"Range": "bytes=0-1", "If-Range": '"other"'})
    assert (stale.status_code, stale.data) == (200, DATA)
    fresh = client.get(url, headers={"Range": "bytes=0-1",
                                     "If-Range": f'"{uploaded["checksum_sha256"]}"'})
    assert (fresh.status_code, fresh.data) == (206, DATA[:2])


def test_if_none_match_is_304(client, uploaded):
    resp = client.get(path_of(uploaded["cdn_url"]),
                      headers={"If-None-Match": f'"{uploaded["checksum_sha256"]}"'})
    assert resp.status_code == 304 and resp.data == b""


def _query(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


@pytest.mark.parametrize("tamper", ["sig", "exp", "id", "missing_sig", "missing_exp", "junk_exp"])
def test_tampered_signatures_are_403(client, uploaded, tamper):
    path, q = _query(uploaded["cdn_url"])
    if tamper == "sig":
        q["sig"] = ("A" if q["sig"][0] != "A" else "B") + q["sig"][1:]
    elif tamper == "exp":
        q["exp"] = str(int(q["exp"]) + 3600)
    elif tamper == "id":
        path = path[:-1] + ("0" if path[-1] != "0" else "1")
    elif tamper == "missing_sig":
        del q["sig"]
    elif tamper == "missing_exp":
        del q["exp"]
    else:
        q["exp"] = "soon"
    resp = client.get(path, query_string=q)
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "forbidden"


def test_expired_signature_is_403(app, client, uploaded):
    settings = app.extensions["beatra.settings"]
    expired = int(time.time()) - 1
    sig = signing.sign(settings, uploaded["artifact_id"], expired)
    resp = client.get(f"/v1/content/{uploaded['artifact_id']}",
                      query_string={"exp": expired, "sig": sig})
    assert resp.status_code == 403
    assert "expired" in resp.get_json()["error"]["message"]
    # the same signature scheme with a future expiry works, so the key itself is right
    later = int(time.time()) + 60
    ok = client.get(f"/v1/content/{uploaded['artifact_id']}",
                    query_string={"exp": later,
                                  "sig": signing.sign(settings, uploaded["artifact_id"], later)})
    assert ok.status_code == 200


def test_url_signed_with_another_key_is_403(make_app, tmp_path):
    app = make_app(secret_key="one")
    from beatra.accounts import service

    with app.app_context():
        acct = service.create_account("x")
        _, secret = service.create_key(acct.id)
    client = app.test_client()
    body = client.post("/v1/uploads", headers={"Authorization": f"Bearer {secret}"},
                       data={"file": (io.BytesIO(image_bytes(4, 4, "png")), "a.png")}).get_json()
    path, q = _query(body["cdn_url"])
    assert client.get(path, query_string=q).status_code == 200
    from dataclasses import replace

    app.extensions["beatra.settings"] = replace(app.extensions["beatra.settings"],
                                                secret_key="two")  # key rotated
    assert client.get(path, query_string=q).status_code == 403


def test_text_is_served_inert(client, account):
    html = b"<html><script>alert(1)</script></html>"
    body = client.post("/v1/uploads", headers=account.headers,
                       data={"file": (io.BytesIO(html), "x.html")}).get_json()
    assert body["mime_type"] == "text/plain"
    resp = client.get(path_of(body["cdn_url"]))
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "sandbox" in resp.headers["Content-Security-Policy"]


def test_dev_secret_is_generated_once_and_persisted(tmp_path, monkeypatch):
    from beatra.config import Settings

    monkeypatch.setenv("BEATRA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(signing, "_dev_keys", {})
    first = signing.signing_key(Settings(secret_key=""))
    assert (tmp_path / "var" / "secret_key").exists()
    monkeypatch.setattr(signing, "_dev_keys", {})  # as if the process restarted
    assert signing.signing_key(Settings(secret_key="")) == first
    assert signing.signing_key(Settings(secret_key="explicit")) == b"explicit"
    assert len(first) >= 32


def test_expiry_rounds_up_so_urls_repeat():
    now = 1_700_000_123.4
    day = signing.expiry(24 * 3600, now)
    assert day % 3600 == 0 and now + 24 * 3600 <= day < now + 25 * 3600
    assert signing.expiry(30, now) == 1_700_000_153
