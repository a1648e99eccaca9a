"""Uploads that are not what they claim (issue 11): a truncated image, an audio file whose data
is far shorter than its header says, and more than one `file` part are 422 `/file`, store
nothing; a slightly short file reports what it really holds."""

from __future__ import annotations

import io
import random

from PIL import Image
from sqlalchemy import func, select

from beatra.extensions import db
from beatra.sandbox.media import mp3_bytes, wav_bytes
from beatra.storage.models import Artifact


def _noisy_png(size: int = 256) -> bytes:
    rng = random.Random(11)
    img = Image.frombytes("RGB", (size, size), bytes(rng.randrange(256)
                                                     for _ in range(size * size * 3)))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _upload(client, account, data: bytes, name: str = "x.bin"):
    return client.post("/v1/uploads", headers=account.headers,
                       data={"file": (io.BytesIO(data), name)})


def _artifacts(app) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(Artifact))
        db.session.remove()
        return n


def _refused(resp, fragment: str) -> None:
    assert resp.status_code == 422, resp.get_json()
    err = resp.get_json()["error"]
    assert err["param"] == "/file" and fragment in err["message"], err


def test_truncated_png_is_422(app, client, account):
    png = _noisy_png()
    for cut in (len(png) // 2, len(png) - 20):
        _refused(_upload(client, account, png[:cut], "cut.png"), "truncated")
    assert _artifacts(app) == 0
    whole = _upload(client, account, png, "whole.png")
    assert whole.status_code == 201 and whole.get_json()["width"] == 256


def test_wav_cut_far_below_its_header_claim_is_422(app, client, account):
    wav = wav_bytes(10.0, 16000, 1)  # header: 10 s
    _refused(_upload(client, account, wav[:2000], "cut.wav"), "truncated")
    assert _artifacts(app) == 0


def test_wav_slightly_short_reports_what_the_bytes_hold(client, account):
    wav = wav_bytes(10.0, 16000, 1)
    data = wav[: 44 + 32000 * 9]  # 9 s of 16 kHz mono 16-bit PCM; the header still says 10 s
    resp = _upload(client, account, data, "short.wav")
    assert resp.status_code == 201, resp.get_json()
    assert 8900 <= resp.get_json()["duration_ms"] <= 9050


def test_whole_audio_keeps_its_duration(client, account):
    assert _upload(client, account, wav_bytes(1.5, 22050, 1)).get_json()["duration_ms"] == 1500
    assert _upload(client, account, mp3_bytes(2.0)).get_json()["duration_ms"] == 2011


def test_two_file_parts_are_422(app, client, account):
    resp = client.post("/v1/uploads", headers=account.headers, data={
        "file": [(io.BytesIO(b"one"), "a.txt"), (io.BytesIO(b"two"), "b.txt")]})
    _refused(resp, "exactly one")
    assert _artifacts(app) == 0
