"""Sandbox Suno (sunoapi.org family): submit, status progression, files, errors."""

from __future__ import annotations

import io
import json
import time
from urllib.parse import urlsplit

import pytest
from mutagen.mp3 import MP3
from PIL import Image
from sandbox_helpers import AUTH

from beatra.sandbox import media, suno

CUSTOM = {"customMode": True, "instrumental": False, "model": "V5_5", "style": "indie pop",
          "title": "Night Drive", "prompt": "[Verse]\nNeon lights", "callBackUrl": "http://cb/x"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(suno, "_now", fake)
    return fake


def submit(sbx, body, path="/suno/api/v1/generate"):
    resp = sbx.post(path, json=body, headers=AUTH)
    assert resp.status_code == 200
    return resp.get_json()


def poll(sbx, task_id):
    resp = sbx.get(f"/suno/api/v1/generate/record-info?taskId={task_id}", headers=AUTH)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["code"] == 200 and body["msg"] == "success"
    return body["data"]


def test_progression_to_success_with_two_mp3_clips(sbx, clock):
    body = {**CUSTOM, "prompt": CUSTOM["prompt"] + " [sandbox:suno_step=2]"}
    task_id = submit(sbx, body)["data"]["taskId"]
    data = poll(sbx, task_id)
    assert data["status"] == "PENDING" and data["response"]["sunoData"] == []
    assert json.loads(data["param"]) == body
    assert (data["type"], data["operationType"], data["errorCode"]) == ("chat", "generate", None)
    clock.now += 2
    text = poll(sbx, task_id)
    assert text["status"] == "TEXT_SUCCESS"
    clips = text["response"]["sunoData"]
    assert len(clips) == 2
    assert all(c["audioUrl"] == "" and c["streamAudioUrl"] for c in clips)
    assert clips[0]["title"] == "Night Drive" and clips[0]["tags"] == "indie pop"
    assert clips[0]["prompt"] == "[Verse]\nNeon lights"  # directive stripped
    clock.now += 2
    first = poll(sbx, task_id)["response"]["sunoData"]
    assert first[0]["audioUrl"] and first[1]["audioUrl"] == ""
    clock.now += 2
    done = poll(sbx, task_id)
    assert done["status"] == "SUCCESS"
    for clip in done["response"]["sunoData"]:
        assert clip["modelName"] == "chirp-v5-5" and isinstance(clip["duration"], float)
        assert isinstance(clip["createTime"], int) and clip["imageUrl"]
        audio = sbx.get(urlsplit(clip["audioUrl"]).path)
        assert audio.mimetype == "audio/mpeg"
        assert MP3(io.BytesIO(audio.data)).info.length == pytest.approx(clip["duration"], 0.01)
        cover = sbx.get(urlsplit(clip["imageUrl"]).path)
        assert Image.open(io.BytesIO(cover.data)).format == "JPEG"


def test_real_clock_progression(sbx):
    task_id = submit(sbx, {"customMode": False, "model": "V4", "callBackUrl": "http://cb",
                           "prompt": "a song about rain [sandbox:suno_step=0.01]"}
                     )["data"]["taskId"]
    seen = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = poll(sbx, task_id)["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "SUCCESS":
            break
        time.sleep(0.005)
    assert seen[-1] == "SUCCESS"
    assert seen == [s for s in suno.STAGES if s in seen]  # never goes backwards


def test_failure_status(sbx, clock):
    body = {**CUSTOM, "style": "pop [sandbox:suno_status=GENERATE_AUDIO_FAILED]"}
    task_id = submit(sbx, body)["data"]["taskId"]
    assert poll(sbx, task_id)["status"] == "PENDING"
    clock.now += 0.5
    data = poll(sbx, task_id)
    assert data["status"] == "GENERATE_AUDIO_FAILED"
    assert data["errorCode"] == 500 and data["errorMessage"]
    clock.now += 100
    assert poll(sbx, task_id)["status"] == "GENERATE_AUDIO_FAILED"  # terminal


def test_insufficient_credits_and_auth(sbx):
    body = submit(sbx, {**CUSTOM, "title": "T [sandbox:suno_code=429]"})
    assert body == {"code": 429, "msg": "The current credits are insufficient. Please top up.",
                    "data": None}
    no_auth = sbx.post("/suno/api/v1/generate", json=CUSTOM)
    assert no_auth.status_code == 401 and no_auth.get_json()["code"] == 401


@pytest.mark.parametrize(("change", "code"), [
    ({"style": None}, 400),
    ({"title": ""}, 400),
    ({"prompt": ""}, 400),
    ({"callBackUrl": None}, 400),
    ({"model": "V3_5"}, 400),
    ({"customMode": None}, 400),
    ({"customMode": False, "prompt": "x" * 501}, 413),
    ({"model": "V4", "style": "s" * 201}, 413),
])
def test_validation(sbx, change, code):
    body = {k: v for k, v in {**CUSTOM, **change}.items() if v is not None}
    resp = submit(sbx, body)
    assert resp["code"] == code and resp["data"] is None


def test_instrumental_custom_needs_no_lyrics_and_unknown_task(sbx):
    body = {**CUSTOM, "instrumental": True, "prompt": ""}
    assert submit(sbx, body)["code"] == 200
    missing = sbx.get("/suno/api/v1/generate/record-info?taskId=nope", headers=AUTH).get_json()
    assert missing["code"] == 400 and missing["msg"] == "task not found"


def test_upload_cover_fetches_upload_url(sbx, monkeypatch, clock):
    urls: list[str] = []
    monkeypatch.setattr(suno, "fetch_bytes",
                        lambda url: urls.append(url) or (media.mp3_bytes(1.0), "audio/mpeg"))
    body = {**CUSTOM, "uploadUrl": "http://gw/artifact.mp3"}
    task_id = submit(sbx, body, "/suno/api/v1/generate/upload-cover")["data"]["taskId"]
    assert urls == ["http://gw/artifact.mp3"]
    clock.now += 10
    data = poll(sbx, task_id)
    assert data["status"] == "SUCCESS" and data["operationType"] == "upload_cover"
    monkeypatch.setattr(suno, "fetch_bytes", lambda url: (b"<html>nope</html>", "text/html"))
    failed = submit(sbx, body, "/suno/api/v1/generate/upload-cover")
    assert failed == {"code": 400, "msg": "File fetch failed", "data": None}
    no_url = submit(sbx, CUSTOM, "/suno/api/v1/generate/upload-cover")
    assert no_url["code"] == 400
