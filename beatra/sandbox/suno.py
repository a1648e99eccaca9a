"""Suno via the sunoapi.org family: submit a task, poll ``record-info``, download files.

Tasks advance with wall-clock time (``suno_step`` seconds per stage) rather than with
poll count, so concurrent pollers and restarts of the gateway's worker see one truth.
Errors are mostly HTTP 200 with a body ``code``, as the real API does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, abort, request

from . import directives, media
from .common import has_bearer, json_body, json_response, new_id, sleep_for
from .directives import Directives
from .fetch import fetch_bytes
from .store import BoundedStore

bp = Blueprint("sandbox_suno", __name__, url_prefix="/suno")

MODELS = {"V4": "chirp-v4", "V4_5": "chirp-v4-5", "V4_5PLUS": "chirp-v4-5-plus",
          "V4_5ALL": "chirp-v4-5-all", "V5": "chirp-v5", "V5_5": "chirp-v5-5"}
CODE_MSG = {
    400: "Invalid parameters",
    401: "You do not have access permissions",
    404: "Request method or path is incorrect",
    405: "Call limit exceeded",
    413: "Prompt too long",
    429: "The current credits are insufficient. Please top up.",
    430: "Your call frequency is too high. Please try again later.",
    455: "The system is currently undergoing maintenance. Please try again later.",
    500: "Server exception, please try again later",
}
FAIL_REASONS = {
    "CREATE_TASK_FAILED": (400, "Create task failed"),
    "GENERATE_AUDIO_FAILED": (500, "Generate audio failed"),
    "CALLBACK_EXCEPTION": (500, "Callback exception"),
    "SENSITIVE_WORD_ERROR": (400, "Song description contained a sensitive word"),
}
STAGES = ("PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", "SUCCESS")
DEFAULT_STEP = 0.5
DEFAULT_SECONDS = 3.0
SAMPLE_RATE = 44100
BITRATE = 128000


def _now() -> float:
    """Task clock; a function so tests can swap it for a fake one."""
    return time.monotonic()


@dataclass
class Clip:
    id: str
    title: str
    tags: str
    lyrics: str
    seconds: float
    create_time: int  # ms since epoch, as sunoapi.org reports it


@dataclass
class Task:
    task_id: str
    param: dict[str, Any]
    model_name: str
    operation_type: str
    step: float
    fail_status: str | None
    clips: list[Clip]
    started: float = field(default_factory=lambda: _now())

    def status(self) -> str:
        stage = len(STAGES) if self.step <= 0 else int((_now() - self.started) / self.step)
        if self.fail_status:
            return "PENDING" if stage < 1 else self.fail_status
        return STAGES[min(stage, len(STAGES) - 1)]


_tasks: BoundedStore[Task] = BoundedStore()
_clips: BoundedStore[Clip] = BoundedStore(20000)


def _body(code: int, msg: str | None = None, data: Any = None, status: int = 200,
          d: Directives | None = None) -> Response:
    payload = {"code": code, "msg": msg or CODE_MSG.get(code, "error"), "data": data}
    return json_response(payload, status, None, d)


def _forced(d: Directives) -> Response | None:
    if d.suno_code is not None and d.suno_code != 200:
        return _body(d.suno_code)
    if d.insufficient_quota:
        return _body(429)
    if d.fail is not None:
        return _body(d.fail, status=d.fail)
    return None


def _validate(body: dict[str, Any], cover: bool) -> tuple[int, str] | None:
    """(body code, message) for an invalid submit, per the sunoapi.org rules."""
    model = body.get("model")
    if model not in MODELS:
        return 400, f"model must be one of {', '.join(MODELS)}"
    if not isinstance(body.get("callBackUrl"), str) or not body["callBackUrl"].strip():
        return 400, "callBackUrl is required"
    if not isinstance(body.get("customMode"), bool):
        return 400, "customMode is required and must be a boolean"
    if not isinstance(body.get("instrumental", False), bool):
        return 400, "instrumental must be a boolean"
    if cover and not (isinstance(body.get("uploadUrl"), str) and body["uploadUrl"].strip()):
        return 400, "uploadUrl is required"
    prompt = body.get("prompt") or ""
    if not isinstance(prompt, str):
        return 400, "prompt must be a string"
    v4 = model == "V4"
    if not body["customMode"]:
        limit = 400 if cover else 500
        if not prompt.strip():
            return 400, "prompt is required"
        return (413, f"prompt exceeds {limit} characters") if len(prompt) > limit else None
    for key in ("style", "title"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            return 400, f"{key} is required in custom mode"
    if not body.get("instrumental") and not prompt.strip():
        return 400, "prompt (lyrics) is required in custom mode unless instrumental"
    title_limit = 80 if model in ("V4", "V4_5ALL") else 100
    for key, limit in (("prompt", 3000 if v4 else 5000), ("style", 200 if v4 else 1000),
                       ("title", title_limit)):
        if len(body.get(key) or "") > limit:
            return 413, f"{key} exceeds {limit} characters for model {model}"
    return None


def _make_task(body: dict[str, Any], d: Directives, operation_type: str) -> Task:
    prompt = directives.clean(body.get("prompt"))
    instrumental = bool(body.get("instrumental"))
    if body["customMode"]:
        title, tags = directives.clean(body["title"]), directives.clean(body["style"])
        lyrics = "" if instrumental else prompt
    else:
        title = "Sandbox Song " + " ".join(prompt.split()[:3])
        tags = "sandbox, pop"
        lyrics = "" if instrumental else f"[Verse]\nSandbox lyrics about {prompt[:80]}"
    seconds = d.seconds or DEFAULT_SECONDS
    now_ms = int(time.time() * 1000)
    clips = [Clip(new_id("", 32), title.strip(), tags, lyrics, seconds + 0.5 * i, now_ms)
             for i in range(2)]  # every request yields two songs
    status = d.suno_status if d.suno_status and d.suno_status not in STAGES else None
    task = Task(task_id=new_id("", 32), param=body, model_name=MODELS[body["model"]],
                operation_type=operation_type,
                step=d.suno_step if d.suno_step is not None else DEFAULT_STEP,
                fail_status=status, clips=clips)
    _tasks.put(task.task_id, task)
    for clip in clips:
        _clips.put(clip.id, clip)
    return task


def _submit(cover: bool) -> Response:
    if not has_bearer():
        return _body(401, status=401)
    body = json_body()
    if body is None:
        return _body(400, "body must be a JSON object")
    d = directives.parse([str(body.get(k) or "") for k in ("prompt", "style", "title")])
    sleep_for(d)
    forced = _forced(d)
    if forced is not None:
        return forced
    problem = _validate(body, cover)
    if problem is not None:
        return _body(*problem)
    if cover:
        fetched = fetch_bytes(body["uploadUrl"])
        if not fetched or not fetched[0] or not (
                fetched[1].startswith("audio/") or media.probe_duration(fetched[0])):
            return _body(400, "File fetch failed")
    task = _make_task(body, d, "upload_cover" if cover else "generate")
    return _body(200, "success", {"taskId": task.task_id}, d=d)


@bp.post("/api/v1/generate")
def generate() -> Response:
    return _submit(cover=False)


@bp.post("/api/v1/generate/upload-cover")
def upload_cover() -> Response:
    return _submit(cover=True)


def _clip_json(clip: Clip, task: Task, ready: bool, base: str) -> dict[str, Any]:
    audio = f"{base}/suno/files/{clip.id}.mp3" if ready else ""
    image = f"{base}/suno/files/{clip.id}.jpeg" if ready else ""
    stream = f"{base}/suno/files/{clip.id}.mp3?stream=1"
    return {
        "id": clip.id,
        "audioUrl": audio, "sourceAudioUrl": audio,
        "streamAudioUrl": stream, "sourceStreamAudioUrl": stream,
        "imageUrl": image, "sourceImageUrl": image,
        "prompt": clip.lyrics,
        "modelName": task.model_name,
        "title": clip.title,
        "tags": clip.tags,
        "createTime": clip.create_time,
        "duration": round(media.mp3_seconds(clip.seconds, SAMPLE_RATE), 2) if ready else None,
    }


@bp.get("/api/v1/generate/record-info")
def record_info() -> Response:
    if not has_bearer():
        return _body(401, status=401)
    task_id = request.args.get("taskId", "")
    if not task_id:
        return _body(400, "taskId is required")
    task = _tasks.get(task_id)
    if task is None:
        return _body(400, "task not found")
    status = task.status()
    base = request.host_url.rstrip("/")
    ready = {"TEXT_SUCCESS": 0, "FIRST_SUCCESS": 1, "SUCCESS": 2}.get(status)
    suno_data = [] if ready is None else [
        _clip_json(clip, task, i < ready, base) for i, clip in enumerate(task.clips)]
    error_code, error_message = FAIL_REASONS.get(status, (500, status)) \
        if status == task.fail_status else (None, None)
    return _body(200, "success", {
        "taskId": task.task_id,
        "parentMusicId": "",
        "param": json.dumps(task.param, ensure_ascii=False),
        "response": {"taskId": task.task_id, "sunoData": suno_data},
        "status": status,
        "type": "chat",
        "operationType": task.operation_type,
        "errorCode": error_code,
        "errorMessage": error_message,
    })


@bp.get("/files/<name>")
def files(name: str) -> Response:
    """Public CDN-style downloads: ``<clip>.mp3`` audio and ``<clip>.jpeg`` cover art."""
    clip_id, _, ext = name.partition(".")
    clip = _clips.get(clip_id)
    if clip is None or ext not in ("mp3", "jpeg"):
        abort(404)
    if ext == "jpeg":
        return Response(media.image_bytes(256, 256, "jpeg", media.seed_of(clip.id), False, 90),
                        mimetype="image/jpeg")
    return Response(media.mp3_bytes(clip.seconds, SAMPLE_RATE, BITRATE), mimetype="audio/mpeg")
