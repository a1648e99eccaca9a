"""POST /v1/music/*: validation, auto routing, the MiniMax and Suno wire formats, stored tracks,
billing, upstream failures, Suno polling without sleeping, callbacks, and cancel."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import mutagen
import pytest
import requests
import responses
from responses import matchers

from beatra.sandbox.media import mp3_bytes
from tests.unit.tasks_helpers import (
    balance,
    finished,
    get,
    hold_messages,
    ledger,
    run_step,
    task_row,
)

MUSIC_CATALOG = Path(__file__).resolve().parent.parent / "catalogs" / "music.yaml"
FAST = {"catalog_path": str(MUSIC_CATALOG), "task_heartbeat_seconds": 0.2,
        "task_lease_seconds": 2.0, "task_sweep_seconds": 3600.0, "task_requeue_seconds": 60.0}
T2M = "/v1/music/text-to-music"
R2M = "/v1/music/reference-audio-to-music"
MM = "http://minimax.test/v1/music_generation"
MM_B = "http://minimax-b.test/v1/music_generation"
SUNO_GEN = "http://suno.test/api/v1/generate"
SUNO_COVER = "http://suno.test/api/v1/generate/upload-cover"
SUNO_INFO = "http://suno.test/api/v1/generate/record-info"
SUNO_B_GEN = "http://suno-b.test/api/v1/generate"
SUNO_B_INFO = "http://suno-b.test/api/v1/generate/record-info"
SONG = mp3_bytes(3.0)


APP_SETTINGS = FAST


def mm_reply(audio: str | None = None, code: int = 0, msg: str = "success") -> dict:
    if code:
        return {"data": None, "trace_id": "t1", "base_resp": {"status_code": code,
                                                               "status_msg": msg}}
    return {"data": {"audio": audio if audio is not None else SONG.hex(), "status": 2},
            "trace_id": "t1", "extra_info": {"music_duration": 3000, "music_sample_rate": 44100,
                                             "music_channel": 2, "bitrate": 256000,
                                             "music_size": len(SONG)},
            "base_resp": {"status_code": 0, "status_msg": "success"}}


def suno_record(status: str, ready: int = 0, task_id: str = "sun1", **extra) -> dict:
    clips = [{"id": f"clip{i}", "audioUrl": f"http://cdn.suno.test/clip{i}.mp3" if i < ready
              else "", "streamAudioUrl": "", "prompt": "[Verse]\nla la", "title": f"Song {i}",
              "tags": "pop", "duration": 3.0} for i in range(2)]
    data = {"taskId": task_id, "status": status, "param": "{}",
            "response": {"taskId": task_id, "sunoData": clips if status != "PENDING" else []},
            "errorCode": None, "errorMessage": None, **extra}
    return {"code": 200, "msg": "success", "data": data}


def post(client, account, path=T2M, **body):
    return client.post(path, json=body, headers=account.headers)


def accepted(client, account, path=T2M, **body) -> dict:
    resp = post(client, account, path, **body)
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()


def content(client, url: str) -> bytes:
    parts = urlsplit(url)
    resp = client.get(f"{parts.path}?{parts.query}")
    assert resp.status_code == 200
    return resp.data


def duration(data: bytes) -> float:
    import io

    return mutagen.File(io.BytesIO(data)).info.length


def sent(mock, index=0) -> dict:
    return json.loads(mock.calls[index].request.body)


# --- validation ---------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "param"), [
    ({"model": "suno-5.5", "prompt": "x", "lyrics": "la la", "instrumental": True}, "/lyrics"),
    ({"model": "minimax-music-2.6", "prompt": "x", "model_options": {"suno": {"style": "a"}}},
     "/model_options/suno"),
    ({"model": "suno-5.5", "prompt": "x", "model_options": {"minimax": {}}},
     "/model_options/minimax"),
    ({"model": "suno-5.5", "prompt": "x", "model_options": {"udio": {}}},
     "/model_options/udio"),
    ({"model": "suno-5.5", "prompt": "x", "tempo": 120}, "/tempo"),
    ({"model": "suno-5.5", "prompt": ""}, "/prompt"),
    ({"model": "suno-5.5", "prompt": "   "}, "/prompt"),
    ({"model": "udio", "prompt": "x"}, "/model"),
    ({"model": "suno-5.5"}, "/prompt"),
    ({"model": "minimax-music-2.6", "prompt": "x" * 2001}, "/prompt"),
    ({"model": "minimax-music-2.6", "prompt": "x", "lyrics": "y" * 3501}, "/lyrics"),
    ({"model": "suno-5.5", "prompt": "x" * 501}, "/prompt"),
    ({"model": "suno-5.5", "prompt": "x" * 1001, "instrumental": True}, "/prompt"),
    ({"model": "suno-5.5", "prompt": "x", "lyrics": "y" * 5001}, "/lyrics"),
    ({"model": "suno-5.5", "prompt": "x", "model_options": {"suno": {"vocal_gender": "x"}}},
     "/model_options/suno/vocal_gender"),
    ({"model": "suno-5.5", "prompt": "x", "model_options": {"suno": {"style_weight": 2}}},
     "/model_options/suno/style_weight"),
    ({"model": "minimax-music-2.6", "prompt": "x",
      "model_options": {"minimax": {"audio_setting": {"format": "pcm"}}}},
     "/model_options/minimax/audio_setting/format"),
    ({"model": "minimax-music-2.6", "prompt": "x", "model_options": {"minimax": {"seed": 1}}},
     "/model_options/minimax/seed"),
    ({"model": "suno-5.5", "prompt": "x", "metadata": {f"k{i}": "v" for i in range(17)}},
     "/metadata"),
    ({"model": "suno-5.5", "prompt": "x", "metadata": {"k": "v" * 513}}, "/metadata/k"),
    # (the shared webargs converter points into dict values as <key>/value)
    ({"model": "suno-5.5", "prompt": "x", "metadata": {"k": 1}}, "/metadata/k/value"),
])
def test_invalid_requests_are_422_and_change_nothing(client, account, upstream, body, param):
    resp = post(client, account, **body)
    assert resp.status_code == 422, resp.get_json()
    error = resp.get_json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request", param), error
    assert balance(client, account) == Decimal("100")
    assert client.get("/v1/tasks", headers=account.headers).get_json()["data"] == []
    assert not upstream.calls


def test_reference_audio_is_required_and_must_be_audio(client, account, upstream):
    resp = post(client, account, R2M, model="suno-5.5", prompt="x")
    assert resp.get_json()["error"]["param"] == "/reference_audio"
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
    resp = post(client, account, R2M, model="suno-5.5", prompt="x",
                reference_audio={"type": "data_uri", "data": f"data:image/png;base64,{png}"})
    assert resp.status_code == 422
    assert resp.get_json()["error"]["param"].startswith("/reference_audio")
    resp = post(client, account, R2M, model="minimax-music-2.6", prompt="x", instrumental=True,
                reference_audio=_ref(SONG))
    assert (resp.status_code, resp.get_json()["error"]["param"]) == (422, "/instrumental")
    resp = post(client, account, R2M, model="minimax-music-2.6", prompt="x",
                reference_audio=_ref(mp3_bytes(2.0)))  # MiniMax covers need 6-360 s
    assert (resp.status_code, resp.get_json()["error"]["param"]) == (
        422, "/reference_audio/data")
    assert balance(client, account) == Decimal("100")


def test_insufficient_balance_queues_nothing(client, make_account, upstream):
    poor = make_account(credits="5")
    resp = post(client, poor, model="minimax-music-2.6", prompt="a song")
    assert resp.status_code == 402
    assert resp.get_json()["error"]["code"] == "insufficient_balance"
    assert client.get("/v1/tasks", headers=poor.headers).get_json()["data"] == []


# --- MiniMax ------------------------------------------------------------------------------

def test_minimax_hex_output_is_stored_probed_and_billed(client, account, upstream, ledger_ok):
    upstream.post(MM, json=mm_reply())
    queued = accepted(client, account, model="minimax-music-2.6", prompt="an upbeat pop song",
                      lyrics="[Verse]\nhello world", title="Hello",
                      metadata={"order": "42"},
                      model_options={"minimax": {"audio_setting": {"bitrate": 128000}}})
    assert queued["capability"] == "music.text_to_music"
    assert queued["metadata"] == {"order": "42"}
    # Hold: 1 song x 10 + 300 s x 0.01.
    assert queued["billing"]["reserved_credits"] == "13"
    task = finished(client, account, queued["task_id"])
    assert task["status"] == "succeeded", task
    assert sent(upstream) == {
        "model": "music-2.6", "prompt": "an upbeat pop song", "lyrics": "[Verse]\nhello world",
        "is_instrumental": False, "output_format": "hex",
        "audio_setting": {"sample_rate": 44100, "bitrate": 128000, "format": "mp3"}}
    assert upstream.calls[0].request.headers["Authorization"] == "Bearer mm-key"
    [track] = task["output"]["tracks"]
    assert (track["index"], track["mime_type"], track["title"], track["lyrics"]) == (
        0, "audio/mpeg", "Hello", "[Verse]\nhello world")
    body = content(client, track["url"])
    assert body == SONG and duration(body) > 0
    assert track["duration_ms"] == round(duration(body) * 1000)
    seconds = Decimal(track["duration_ms"]) / 1000
    assert Decimal(str(task["usage"]["audio_seconds"])) == seconds
    lines = {line["meter"]: line for line in task["usage"]["lines"]}
    assert lines["song"]["quantity"] == "1" and lines["song"]["unit"] == "song"
    assert lines["audio_second"]["unit"] == "second"
    charged = Decimal("10") + seconds * Decimal("0.01")
    assert Decimal(task["billing"]["charged_credits"]) == charged
    assert balance(client, account) == Decimal("100") - charged


def test_minimax_url_output_is_downloaded_and_instrumental_mapped(client, account, upstream):
    upstream.post(MM, json=mm_reply("http://cdn.minimax.test/out/abc.mp3"))
    upstream.get("http://cdn.minimax.test/out/abc.mp3", body=SONG,
                 content_type="audio/mpeg")
    task = finished(client, account, accepted(client, account, model="minimax-music-2.6",
                                              prompt="calm piano", instrumental=True)["task_id"])
    assert task["status"] == "succeeded", task
    body = sent(upstream)
    assert body["is_instrumental"] is True and "lyrics_optimizer" not in body
    assert content(client, task["output"]["tracks"][0]["url"]) == SONG


def test_minimax_without_lyrics_uses_the_lyrics_optimizer(client, account, upstream):
    upstream.post(MM, json=mm_reply())
    task = finished(client, account, accepted(client, account, model="minimax-music-2.6",
                                              prompt="a song about rain")["task_id"])
    assert task["status"] == "succeeded"
    body = sent(upstream)
    assert body["lyrics_optimizer"] is True and "lyrics" not in body
    assert task["output"]["tracks"][0]["lyrics"] is None


@pytest.mark.parametrize(("code", "public", "retryable"), [
    (1008, "upstream_insufficient_balance", False),
    (1026, "content_policy_violation", False),
    (1027, "content_policy_violation", False),
    (2013, "upstream_error", False),
    (1004, "model_unavailable", False),
])
def test_minimax_business_errors_fail_and_refund(client, account, upstream, ledger_ok, code,
                                                 public, retryable):
    upstream.post(MM, json=mm_reply(code=code, msg="nope"))  # HTTP 200, as MiniMax does
    task = finished(client, account, accepted(client, account, model="minimax-music-2.6",
                                              prompt="a song")["task_id"])
    assert task["status"] == "failed"
    assert (task["error"]["code"], task["error"]["retryable"]) == (public, retryable)
    assert str(code) in task["error"]["message"]
    assert len(upstream.calls) == 1  # not retried on the second route
    assert task["billing"]["refunded_credits"] == task["billing"]["reserved_credits"]
    assert [k for k, _ in ledger(client.application, task["task_id"])] == ["reserve", "refund"]
    assert balance(client, account) == Decimal("100")


def test_minimax_rate_limit_tries_the_next_route(client, account, upstream):
    upstream.post(MM, json=mm_reply(code=1002, msg="rate limit"))
    upstream.post(MM_B, json=mm_reply())
    task = finished(client, account, accepted(client, account, model="minimax-music-2.6",
                                              prompt="a song")["task_id"])
    assert task["status"] == "succeeded"
    assert [c.request.url for c in upstream.calls] == [MM, MM_B]


def test_minimax_rate_limit_everywhere_is_retryable(client, account, upstream):
    upstream.post(MM, json=mm_reply(code=1002, msg="rate limit"))
    upstream.post(MM_B, status=429, body="")
    task = finished(client, account, accepted(client, account, model="minimax-music-2.6",
                                              prompt="a song")["task_id"])
    assert (task["error"]["code"], task["error"]["retryable"]) == ("rate_limited", True)


def _ref(data: bytes) -> dict:
    return {"type": "data_uri", "data": "data:audio/mpeg;base64," + base64.b64encode(data).decode()}


def test_minimax_cover_sends_a_content_url_of_the_reference(client, account, upstream):
    upstream.post(MM, json=mm_reply())
    reference = mp3_bytes(7.0)
    queued = accepted(client, account, R2M, model="minimax-music-2.6", prompt="jazz version",
                      reference_audio=_ref(reference))
    assert queued["capability"] == "music.reference_audio_to_music"
    ref = queued["input"]["reference_audio"]
    assert (ref["type"], ref["source"], ref["mime_type"]) == ("artifact", "data_uri",
                                                              "audio/mpeg")
    task = finished(client, account, queued["task_id"])
    assert task["status"] == "succeeded", task
    body = sent(upstream)
    assert body["model"] == "music-cover" and body["prompt"] == "jazz version"
    assert "is_instrumental" not in body and "lyrics_optimizer" not in body
    assert content(client, body["audio_url"]) == reference  # the upstream can fetch it


def test_cancel_during_the_minimax_call_discards_the_late_result(client, account, upstream,
                                                                 ledger_ok):
    state = {}

    def slow_upstream(request):
        # The caller cancels while MiniMax is still working on the song.
        resp = client.post(f"/v1/tasks/{state['id']}/cancel", headers=account.headers)
        state["cancel"] = resp.get_json()
        return 200, {}, json.dumps(mm_reply())

    upstream.add_callback(responses.POST, MM, callback=slow_upstream)
    state["id"] = accepted(client, account, model="minimax-music-2.6", prompt="a song")["task_id"]
    task = finished(client, account, state["id"])
    assert state["cancel"]["status"] == "running" and state["cancel"]["cancel_requested_at"]
    assert task["status"] == "canceled" and task["output"] is None
    assert task["billing"]["refunded_credits"] == "13"
    assert [k for k, _ in ledger(client.application, state["id"])] == ["reserve", "refund"]
    assert balance(client, account) == Decimal("100")


# --- Suno ---------------------------------------------------------------------------------

def _suno_files(upstream):
    for i in range(2):
        upstream.get(f"http://cdn.suno.test/clip{i}.mp3", body=mp3_bytes(3.0 + i),
                     content_type="audio/mpeg")


def test_suno_polls_by_delayed_messages_then_stores_both_clips(app, client, account, upstream,
                                                              monkeypatch, ledger_ok):
    _, messages = hold_messages(app, monkeypatch)
    upstream.post(SUNO_GEN, json={"code": 200, "msg": "success", "data": {"taskId": "sun1"}})
    queued = accepted(client, account, model="suno-5.5", prompt="dreamy synthwave",
                      lyrics="[Verse]\nneon lights", title="Neon")
    task_id = queued["task_id"]
    assert queued["billing"]["reserved_credits"] == "8"  # 2 songs x 4
    run_step(app, task_id)
    body = sent(upstream)
    callback = body.pop("callBackUrl")
    assert body == {"model": "V5_5", "customMode": True, "instrumental": False,
                    "style": "dreamy synthwave", "title": "Neon", "prompt": "[Verse]\nneon lights"}
    assert callback.startswith("http://beatra.test/v1/callbacks/suno?task=" + task_id)
    assert task_row(app, task_id).state["suno"]["task_id"] == "sun1"
    task = get(client, account, task_id)
    assert task["status"] == "running" and task["progress"]["stage"] == "upstream_queued"

    steps = [("PENDING", 0, "upstream_queued"), ("TEXT_SUCCESS", 0, "lyrics_ready"),
             ("FIRST_SUCCESS", 1, "first_track_ready")]
    for status, ready, stage in steps:
        upstream.get(SUNO_INFO, json=suno_record(status, ready),
                     match=[matchers.query_param_matcher({"taskId": "sun1"})])
        run_step(app, task_id)
        task = get(client, account, task_id)
        assert (task["status"], task["progress"]["stage"]) == ("running", stage)
        upstream.remove(responses.GET, SUNO_INFO)
    # Each step ends by parking the task behind one delayed message, with a growing delay.
    assert [delay for _, delay in messages.sent] == [0, 2.0, 3.0, 4.5, 6.75]
    assert task_row(app, task_id).attempts == 1  # wake-ups are not new attempts

    upstream.get(SUNO_INFO, json=suno_record("SUCCESS", 2))
    _suno_files(upstream)
    run_step(app, task_id)
    task = get(client, account, task_id)
    assert task["status"] == "succeeded", task
    tracks = task["output"]["tracks"]
    assert [(t["index"], t["title"], t["lyrics"]) for t in tracks] == [
        (0, "Neon", "[Verse]\nla la"), (1, "Neon", "[Verse]\nla la")]
    for i, track in enumerate(tracks):
        data = content(client, track["url"])
        assert data == mp3_bytes(3.0 + i) and duration(data) > 0
    assert task["output"]["upstream_task_id"] == "sun1"
    lines = {line["meter"]: line["quantity"] for line in task["usage"]["lines"]}
    assert lines["song"] == "2" and task["billing"]["charged_credits"] == "8"
    assert balance(client, account) == Decimal("92")


def test_suno_description_mode_and_auto_routing(app, client, account, upstream, monkeypatch):
    hold_messages(app, monkeypatch)
    upstream.post(SUNO_GEN, json={"code": 200, "msg": "success", "data": {"taskId": "s2"}})
    queued = accepted(client, account, model="auto", prompt="a happy birthday song")
    # Routed at submission: the queued envelope names the model its warning names.
    assert queued["resolved_model"] == "suno-5.5"
    assert [w["code"] for w in queued["warnings"]] == ["auto_routed"]
    assert "suno-5.5" in queued["warnings"][0]["message"]
    run_step(app, queued["task_id"])
    assert get(client, account, queued["task_id"])["resolved_model"] == "suno-5.5"
    body = sent(upstream)
    assert (body["customMode"], body["prompt"], body["instrumental"]) == (
        False, "a happy birthday song", False)
    assert "style" not in body and "title" not in body


@pytest.mark.parametrize(("body", "model"), [
    ({"prompt": "x", "instrumental": True}, "suno-5.5"),
    ({"prompt": "x", "lyrics": "la"}, "minimax-music-2.6"),
    ({"prompt": "x", "model_options": {"minimax": {"lyrics_optimizer": True}}},
     "minimax-music-2.6"),
    ({"prompt": "x", "model_options": {"suno": {"vocal_gender": "f"}}}, "suno-5.5"),
])
def test_auto_picks_by_the_request(app, client, account, monkeypatch, body, model):
    hold_messages(app, monkeypatch)
    queued = accepted(client, account, model="auto", **body)
    assert task_row(app, queued["task_id"]).resolved_model == model
    assert queued["warnings"][0]["code"] == "auto_routed"


def test_auto_with_reference_audio_picks_the_cover_model(app, client, account, monkeypatch):
    hold_messages(app, monkeypatch)
    ref = _ref(mp3_bytes(7.0))
    cover = accepted(client, account, R2M, model="auto", prompt="x", reference_audio=ref)
    inst = accepted(client, account, R2M, model="auto", prompt="x", instrumental=True,
                    reference_audio=ref)
    assert task_row(app, cover["task_id"]).resolved_model == "minimax-music-2.6"
    assert task_row(app, inst["task_id"]).resolved_model == "suno-5.5"


def test_suno_instrumental_cover_uses_upload_cover(app, client, account, upstream, monkeypatch):
    hold_messages(app, monkeypatch)
    upstream.post(SUNO_COVER, json={"code": 200, "msg": "success", "data": {"taskId": "c1"}})
    reference = mp3_bytes(5.0)
    queued = accepted(client, account, R2M, model="suno-5.5", prompt="lofi beat",
                      instrumental=True, reference_audio=_ref(reference),
                      model_options={"suno": {"negative_tags": "metal"}})
    run_step(app, queued["task_id"])
    body = sent(upstream)
    assert (body["customMode"], body["instrumental"], body["style"]) == (True, True, "lofi beat")
    assert body["title"] == "lofi beat" and "prompt" not in body
    assert body["negativeTags"] == "metal"
    assert content(client, body["uploadUrl"]) == reference


@pytest.mark.parametrize(("status", "public", "retryable"), [
    ("GENERATE_AUDIO_FAILED", "upstream_error", True),
    ("SENSITIVE_WORD_ERROR", "content_policy_violation", False),
    ("CREATE_TASK_FAILED", "upstream_error", False),
])
def test_suno_failure_statuses_fail_and_refund(app, client, account, upstream, monkeypatch,
                                               ledger_ok, status, public, retryable):
    hold_messages(app, monkeypatch)
    upstream.post(SUNO_GEN, json={"code": 200, "msg": "success", "data": {"taskId": "f1"}})
    upstream.get(SUNO_INFO, json=suno_record(status, errorCode=500, errorMessage="boom"))
    task_id = accepted(client, account, model="suno-5.5", prompt="x")["task_id"]
    run_step(app, task_id)
    run_step(app, task_id)
    task = get(client, account, task_id)
    assert task["status"] == "failed"
    assert (task["error"]["code"], task["error"]["retryable"]) == (public, retryable)
    assert status in task["error"]["message"]
    assert [k for k, _ in ledger(app, task_id)] == ["reserve", "refund"]
    assert balance(client, account) == Decimal("100")


@pytest.mark.parametrize(("code", "public", "retryable", "routes_tried"), [
    (429, "upstream_insufficient_balance", False, 2),  # out of credits, not a rate limit
    (455, "model_unavailable", True, 2),  # maintenance
    (400, "upstream_error", False, 1),  # the request itself: no other route is tried
])
def test_suno_submit_body_codes(app, client, account, upstream, monkeypatch, code, public,
                                retryable, routes_tried):
    hold_messages(app, monkeypatch)
    upstream.post(SUNO_GEN, json={"code": code, "msg": "nope", "data": None})
    upstream.post(SUNO_B_GEN, json={"code": code, "msg": "nope", "data": None})
    task_id = accepted(client, account, model="suno-5.5", prompt="x")["task_id"]
    run_step(app, task_id)
    task = get(client, account, task_id)
    assert (task["status"], task["error"]["code"], task["error"]["retryable"]) == (
        "failed", public, retryable)
    assert [c.request.url for c in upstream.calls] == [SUNO_GEN, SUNO_B_GEN][:routes_tried]


def test_a_refused_suno_submit_goes_to_the_next_route_and_stays_there(app, client, account,
                                                                       upstream, monkeypatch,
                                                                       ledger_ok):
    hold_messages(app, monkeypatch)
    upstream.post(SUNO_GEN, json={"code": 429, "msg": "credits exhausted", "data": None})
    upstream.post(SUNO_B_GEN, json={"code": 200, "msg": "success", "data": {"taskId": "b1"}})
    task_id = accepted(client, account, model="suno-5.5", prompt="x")["task_id"]
    run_step(app, task_id)
    assert task_row(app, task_id).state["suno"] == {**task_row(app, task_id).state["suno"],
                                                    "task_id": "b1", "provider": "suno-b"}
    upstream.get(SUNO_B_INFO, json=suno_record("SUCCESS", 2, task_id="b1"))
    _suno_files(upstream)
    run_step(app, task_id)  # polled where it was submitted
    task = get(client, account, task_id)
    assert task["status"] == "succeeded", task
    assert [c.request.url.split("?")[0] for c in upstream.calls[:3]] == [
        SUNO_GEN, SUNO_B_GEN, SUNO_B_INFO]


@pytest.mark.parametrize("answer", [requests.ReadTimeout("read timed out"),
                                    {"code": 200, "msg": "success", "data": {}}],
                         ids=["timeout", "no-task-id"])
def test_a_suno_submit_that_may_have_started_a_job_is_not_sent_elsewhere(
        app, client, account, upstream, monkeypatch, answer):
    hold_messages(app, monkeypatch)
    if isinstance(answer, Exception):
        upstream.post(SUNO_GEN, body=answer)
    else:
        upstream.post(SUNO_GEN, json=answer)
    upstream.post(SUNO_B_GEN, json={"code": 200, "msg": "success", "data": {"taskId": "b1"}})
    task_id = accepted(client, account, model="suno-5.5", prompt="x")["task_id"]
    run_step(app, task_id)
    task = get(client, account, task_id)
    assert (task["status"], task["error"]["code"], task["error"]["retryable"]) == (
        "failed", "upstream_error", True)
    assert [c.request.url for c in upstream.calls] == [SUNO_GEN]


def test_suno_throttling_waits_and_submits_again(app, client, account, upstream, monkeypatch):
    _, messages = hold_messages(app, monkeypatch)
    upstream.post(SUNO_GEN, json={"code": 430, "msg": "too frequent", "data": None})
    upstream.post(SUNO_B_GEN, json={"code": 405, "msg": "too many", "data": None})
    task_id = accepted(client, account, model="suno-5.5", prompt="x")["task_id"]
    run_step(app, task_id)
    assert get(client, account, task_id)["status"] == "running"
    assert messages.sent[-1][1] > 0
    assert [c.request.url for c in upstream.calls] == [SUNO_GEN, SUNO_B_GEN]
    upstream.replace(responses.POST, SUNO_GEN,
                     json={"code": 200, "msg": "success", "data": {"taskId": "t9"}})
    run_step(app, task_id)
    assert task_row(app, task_id).state["suno"]["task_id"] == "t9"


def test_cancel_while_polling_is_immediate_and_refunded(app, client, account, upstream,
                                                        monkeypatch, ledger_ok):
    hold_messages(app, monkeypatch)
    upstream.post(SUNO_GEN, json={"code": 200, "msg": "success", "data": {"taskId": "x1"}})
    upstream.get(SUNO_INFO, json=suno_record("TEXT_SUCCESS"))
    task_id = accepted(client, account, model="suno-5.5", prompt="x")["task_id"]
    run_step(app, task_id)
    run_step(app, task_id)  # parked between polls
    resp = client.post(f"/v1/tasks/{task_id}/cancel", headers=account.headers)
    assert resp.status_code == 202 and resp.get_json()["status"] == "canceled"
    polls = len(upstream.calls)
    run_step(app, task_id)  # the delayed wake-up arrives: nothing happens
    assert len(upstream.calls) == polls
    task = get(client, account, task_id)
    assert task["status"] == "canceled" and task["billing"]["refunded_credits"] == "8"
    assert [k for k, _ in ledger(app, task_id)] == ["reserve", "refund"]
    assert balance(client, account) == Decimal("100")


def test_suno_transient_poll_errors_are_retried(app, client, account, upstream, monkeypatch):
    hold_messages(app, monkeypatch)
    upstream.post(SUNO_GEN, json={"code": 200, "msg": "success", "data": {"taskId": "e1"}})
    upstream.get(SUNO_INFO, status=502, body="bad gateway")
    task_id = accepted(client, account, model="suno-5.5", prompt="x")["task_id"]
    run_step(app, task_id)
    for _ in range(4):
        run_step(app, task_id)
        assert get(client, account, task_id)["status"] == "running"
    run_step(app, task_id)  # the fifth failure in a row ends it
    task = get(client, account, task_id)
    assert (task["status"], task["error"]["retryable"]) == ("failed", True)


# --- callbacks ----------------------------------------------------------------------------

def test_suno_callback_wakes_its_parked_task_only(app, client, account, upstream, monkeypatch):
    _, messages = hold_messages(app, monkeypatch)
    upstream.post(SUNO_GEN, json={"code": 200, "msg": "success", "data": {"taskId": "cb1"}})
    task_id = accepted(client, account, model="suno-5.5", prompt="x")["task_id"]
    run_step(app, task_id)
    url = urlsplit(sent(upstream)["callBackUrl"])
    query = parse_qs(url.query)
    path = f"{url.path}?{url.query}"

    def callback(kind, upstream_id="cb1", target=path):
        return client.post(target, json={"code": 200, "msg": "ok", "data": {
            "callbackType": kind, "task_id": upstream_id,
            "data": [{"id": "z", "audio_url": "http://evil.test/x.mp3"}]}})

    before = len(messages.sent)
    resp = callback("text")  # not finished yet: no wake-up
    assert resp.status_code == 200 and resp.get_json() == {"ok": True, "woken": False}
    assert callback("complete", "someone-else").get_json()["woken"] is False
    resp = callback("complete")
    assert resp.get_json() == {"ok": True, "woken": True}
    assert messages.sent[before:] == [(task_id, 0)]
    forged = f"{url.path}?task={query['task'][0]}&sig=forged"
    assert callback("complete", target=forged).status_code == 404
    assert client.post(f"{url.path}?task=task_nope&sig=x", json={}).status_code == 404
    assert client.post(url.path, json={}).status_code == 422
