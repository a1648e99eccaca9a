"""Sandbox MiniMax music: hex/url output with real audio, base_resp errors, cover flow."""

from __future__ import annotations

import base64
import io
import json
from urllib.parse import urlsplit

import pytest
from mutagen.mp3 import MP3
from mutagen.wave import WAVE
from sandbox_helpers import AUTH

from beatra.sandbox import fetch, media, minimax

SONG = {"model": "music-2.6", "prompt": "upbeat synthwave", "lyrics": "[Verse]\nla la la"}


def music(sbx, headers=AUTH, **body):
    return sbx.post("/minimax/v1/music_generation", json=body, headers=headers)


def test_hex_mp3_output(sbx):
    resp = music(sbx, **SONG)
    assert resp.status_code == 200 and resp.headers["Trace-Id"]
    body = resp.get_json()
    assert body["base_resp"] == {"status_code": 0, "status_msg": "success"}
    assert body["data"]["status"] == 2 and body["analysis_info"] is None
    assert body["trace_id"] == resp.headers["Trace-Id"]
    audio = bytes.fromhex(body["data"]["audio"])
    info = MP3(io.BytesIO(audio)).info
    assert info.length > 0 and info.sample_rate == 44100
    extra = body["extra_info"]
    assert extra["music_size"] == len(audio) and extra["music_duration"] == 3000
    assert (extra["music_sample_rate"], extra["music_channel"], extra["bitrate"]) == (
        44100, 2, 256000)


def test_url_wav_output_served_by_sandbox(sbx):
    body = music(sbx, **{**SONG, "prompt": "calm [sandbox:seconds=1.5]"}, output_format="url",
                 audio_setting={"format": "wav", "sample_rate": 32000}).get_json()
    url = body["data"]["audio"]
    assert url.startswith("http://localhost/minimax/files/") and url.endswith(".wav")
    download = sbx.get(urlsplit(url).path)
    assert download.status_code == 200 and download.mimetype == "audio/wav"
    info = WAVE(io.BytesIO(download.data)).info
    assert info.length == pytest.approx(1.5) and info.sample_rate == 32000
    assert body["extra_info"]["music_size"] == len(download.data)


def test_pcm_and_instrumental(sbx):
    body = music(sbx, model="music-2.5", prompt="piano", is_instrumental=True,
                 audio_setting={"format": "pcm", "sample_rate": 16000}).get_json()
    assert body["base_resp"]["status_code"] == 0
    assert len(bytes.fromhex(body["data"]["audio"])) == 3 * 16000 * 2 * 2


@pytest.mark.parametrize("body", [
    {"model": "music-2.6", "prompt": "no lyrics"},
    {"model": "music-2.6", "is_instrumental": True},
    {"model": "music-9", "lyrics": "x"},
    {"model": "music-2.6", "lyrics": "x", "audio_setting": {"format": "ogg"}},
    {"model": "music-cover", "prompt": "p", "audio_url": "http://a/x.mp3",
     "audio_base64": "AAAA"},
    {"model": "music-cover", "prompt": "p", "cover_feature_id": "cf_unknown"},
])
def test_invalid_params_are_2013_with_http_200(sbx, body):
    resp = music(sbx, **body)
    assert resp.status_code == 200
    assert resp.get_json()["base_resp"]["status_code"] == 2013
    assert resp.get_json()["data"] is None


def test_minimax_code_directive_and_auth(sbx):
    resp = music(sbx, **{**SONG, "lyrics": "la [sandbox:minimax_code=1008]"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["data"] is None
    assert body["base_resp"] == {"status_code": 1008,
                                 "status_msg": "insufficient balance: sandbox directive"}
    no_auth = music(sbx, headers={}, **SONG)
    assert no_auth.status_code == 401
    assert no_auth.get_json()["base_resp"]["status_code"] == 1004
    failed = music(sbx, **{**SONG, "prompt": "x [sandbox:fail=503]"})
    assert failed.status_code == 503 and failed.get_json()["base_resp"]["status_code"] == 1033


def test_cover_two_step_flow(sbx, monkeypatch):
    source = media.mp3_bytes(4.0)
    pre = sbx.post("/minimax/v1/music_cover_preprocess", headers=AUTH, json={
        "model": "music-cover", "audio_base64": base64.b64encode(source).decode()})
    body = pre.get_json()
    assert body["base_resp"]["status_code"] == 0
    assert body["cover_feature_id"].startswith("cf_") and body["formatted_lyrics"]
    assert isinstance(body["structure_result"], str)
    assert json.loads(body["structure_result"])["segments"]
    assert body["audio_duration"] == pytest.approx(4.0, abs=0.05)
    song = music(sbx, model="music-cover", prompt="jazz version", lyrics="new words",
                 cover_feature_id=body["cover_feature_id"]).get_json()
    assert song["base_resp"]["status_code"] == 0 and song["data"]["audio"]
    # One-step cover fetches audio_url (the gateway passes its own signed URL).
    fetched: list[str] = []
    monkeypatch.setattr(minimax, "fetch_bytes",
                        lambda url: fetched.append(url) or (source, "audio/mpeg"))
    one_step = music(sbx, model="music-cover", prompt="rock", audio_url="http://gw/a.mp3")
    assert one_step.get_json()["base_resp"]["status_code"] == 0
    assert fetched == ["http://gw/a.mp3"]
    monkeypatch.setattr(minimax, "fetch_bytes", lambda url: None)
    assert music(sbx, model="music-cover", prompt="rock", audio_url="http://gw/missing"
                 ).get_json()["base_resp"]["status_code"] == 2013
    assert fetch.fetch_bytes("http://127.0.0.1:9/unreachable") is None
