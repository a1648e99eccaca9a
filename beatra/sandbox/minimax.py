"""MiniMax music: synchronous ``music_generation`` and ``music_cover_preprocess``.

Business errors come back as HTTP 200 with a non-zero ``base_resp.status_code`` — the
main trap for a gateway that only checks HTTP status — so the sandbox does the same.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, request

from . import directives, media
from .common import has_bearer, json_body, json_response, new_id, sleep_for
from .directives import Directives
from .fetch import fetch_bytes
from .store import BoundedStore

bp = Blueprint("sandbox_minimax", __name__, url_prefix="/minimax")

STATUS_MSG = {
    0: "success",
    1000: "unknown error",
    1001: "request timeout",
    1002: "rate limit exceeded",
    1004: "authentication failed",
    1008: "insufficient balance",
    1024: "internal error",
    1026: "input content is sensitive",
    1027: "output content is sensitive",
    1033: "system error or downstream error",
    2013: "invalid params",
    2038: "real-name verification required",
    2061: "model not available on your plan",
}
# HTTP status of the fail=N directive -> the base_resp code sent with it.
_HTTP_TO_CODE = {400: 2013, 401: 1004, 403: 1004, 429: 1002, 500: 1024, 502: 1033,
                 503: 1033, 504: 1001}
MODELS = {"music-1.5", "music-2.0", "music-2.5", "music-2.5+", "music-2.6", "music-2.6-free",
          "music-cover", "music-cover-free", "music-3.0", "music-3.0-free"}
SAMPLE_RATES = {16000, 24000, 32000, 44100}
BITRATES = {32000, 64000, 128000, 256000}
DEFAULT_SECONDS = 3.0


@dataclass(frozen=True)
class AudioRecipe:
    fmt: str
    seconds: float
    sample_rate: int
    bitrate: int

    def render(self) -> bytes:
        return media.audio_bytes(self.fmt, self.seconds, self.sample_rate, self.bitrate)


_files: BoundedStore[AudioRecipe] = BoundedStore()
_cover_features: BoundedStore[float] = BoundedStore()  # cover_feature_id -> seconds


def _reply(payload: dict[str, Any], status: int = 200, d: Directives | None = None) -> Response:
    trace_id = new_id("", 32)
    payload = {**payload, "trace_id": trace_id}
    return json_response(payload, status, {"Trace-Id": trace_id}, d)


def _error(code: int, detail: str = "", status: int = 200) -> Response:
    msg = STATUS_MSG.get(code, "error") + (f": {detail}" if detail else "")
    return _reply({"data": None, "base_resp": {"status_code": code, "status_msg": msg}}, status)


def _auth_error() -> Response:
    return _error(1004, "Please carry the API secret key in the 'Authorization' field of "
                  "the request header", 401)


def _forced(d: Directives) -> Response | None:
    if d.minimax_code:  # 0 means success, i.e. no fault
        return _error(d.minimax_code, "sandbox directive")
    if d.insufficient_quota:
        return _error(1008, "sandbox directive", 429)
    if d.fail is not None:
        return _error(_HTTP_TO_CODE.get(d.fail, 1000), "sandbox directive", d.fail)
    return None


def _one_source(body: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    given = [k for k in keys if body.get(k)]
    return given[0] if len(given) == 1 else None


def _load_source(body: dict[str, Any], key: str) -> bytes | None:
    if key == "audio_url":
        fetched = fetch_bytes(str(body["audio_url"]))
        return fetched[0] if fetched and fetched[0] else None
    try:
        return base64.b64decode(str(body["audio_base64"]), validate=True) or None
    except (binascii.Error, ValueError):
        return None


def _validate(body: dict[str, Any]) -> str | None:
    """Reason the request is invalid (base_resp 2013), or None."""
    model = body.get("model")
    if model not in MODELS:
        return f"model {model!r} is not supported"
    prompt, lyrics = body.get("prompt") or "", body.get("lyrics") or ""
    if not isinstance(prompt, str) or not isinstance(lyrics, str):
        return "prompt and lyrics must be strings"
    if len(prompt) > 2000:
        return "prompt exceeds 2000 characters"
    if len(lyrics) > 3500:
        return "lyrics exceed 3500 characters"
    setting = body.get("audio_setting") or {}
    if not isinstance(setting, dict):
        return "audio_setting must be an object"
    if setting.get("sample_rate", 44100) not in SAMPLE_RATES:
        return "audio_setting.sample_rate must be one of 16000, 24000, 32000, 44100"
    if setting.get("bitrate", 256000) not in BITRATES:
        return "audio_setting.bitrate must be one of 32000, 64000, 128000, 256000"
    if setting.get("format", "mp3") not in media.AUDIO_MIME:
        return "audio_setting.format must be mp3, wav or pcm"
    if body.get("output_format", "hex") not in ("hex", "url"):
        return "output_format must be hex or url"
    if str(model).startswith("music-cover"):
        source = _one_source(body, ("audio_url", "audio_base64", "cover_feature_id"))
        if source is None:
            return "exactly one of audio_url, audio_base64, cover_feature_id is required"
        if body.get("is_instrumental") or body.get("lyrics_optimizer"):
            return "is_instrumental and lyrics_optimizer are not supported by cover models"
        if not prompt.strip():
            return "prompt is required for cover generation"
        if source == "cover_feature_id" and _cover_features.get(body[source]) is None:
            return "cover_feature_id not found or expired"
        if source != "cover_feature_id" and _load_source(body, source) is None:
            return f"could not read reference audio from {source}"
        return None
    if body.get("is_instrumental"):
        return None if prompt.strip() else "prompt is required when is_instrumental is true"
    if lyrics.strip():
        return None
    if body.get("lyrics_optimizer"):
        return None if prompt.strip() else "prompt is required for lyrics_optimizer"
    return "lyrics is required unless is_instrumental or lyrics_optimizer is set"


@bp.post("/v1/music_generation")
def music_generation() -> Response:
    if not has_bearer():
        return _auth_error()
    body = json_body()
    if body is None:
        return _error(2013, "body must be a JSON object")
    d = directives.parse([str(body.get("prompt") or ""), str(body.get("lyrics") or "")])
    sleep_for(d)  # the real call is synchronous: the connection stays open until done
    forced = _forced(d)
    if forced is not None:
        return forced
    problem = _validate(body)
    if problem is not None:
        return _error(2013, problem)
    setting = body.get("audio_setting") or {}
    fmt = setting.get("format", "mp3")
    sample_rate = setting.get("sample_rate", 44100)
    bitrate = setting.get("bitrate", 256000)
    if fmt == "mp3":
        sample_rate, bitrate = media.mp3_params(sample_rate, bitrate)
    else:
        bitrate = sample_rate * 16 * 2  # uncompressed stereo s16
    recipe = AudioRecipe(fmt, d.seconds or DEFAULT_SECONDS, sample_rate, bitrate)
    audio = recipe.render()
    if body.get("output_format", "hex") == "url":
        name = f"{new_id('', 32)}.{fmt}"
        _files.put(name, recipe)
        ref = f"{request.host_url.rstrip('/')}/minimax/files/{name}"
    else:
        ref = audio.hex()
    return _reply({
        "data": {"audio": ref, "status": 2},
        "extra_info": {
            "music_duration": round(recipe.seconds * 1000),
            "music_sample_rate": sample_rate,
            "music_channel": 2,
            "bitrate": bitrate,
            "music_size": len(audio),
        },
        "analysis_info": None,
        "base_resp": {"status_code": 0, "status_msg": "success"},
    }, 200, d)


@bp.post("/v1/music_cover_preprocess")
def music_cover_preprocess() -> Response:
    if not has_bearer():
        return _auth_error()
    body = json_body()
    if body is None:
        return _error(2013, "body must be a JSON object")
    if not str(body.get("model", "")).startswith("music-cover"):
        return _error(2013, "model must be music-cover")
    source = _one_source(body, ("audio_url", "audio_base64"))
    if source is None:
        return _error(2013, "exactly one of audio_url, audio_base64 is required")
    audio = _load_source(body, source)
    if audio is None:
        return _error(2013, f"could not read reference audio from {source}")
    seconds = media.probe_duration(audio)
    if seconds is None:
        return _error(2013, "reference audio could not be decoded")
    feature_id = "cf_" + hashlib.md5(audio).hexdigest()  # real ids dedupe by MD5 too
    _cover_features.put(feature_id, seconds)
    half = round(seconds / 2, 3)
    structure = {"segments": [
        {"label": "verse", "start": 0.0, "end": half},
        {"label": "chorus", "start": half, "end": round(seconds, 3)},
    ]}
    return _reply({
        "cover_feature_id": feature_id,
        "formatted_lyrics": "[Verse]\nSandbox lyric line one\nSandbox lyric line two\n\n"
                            "[Chorus]\nSandbox chorus line",
        "structure_result": json.dumps(structure),  # a JSON *string*, as upstream sends
        "audio_duration": round(seconds, 3),
        "base_resp": {"status_code": 0, "status_msg": "success"},
    })


@bp.get("/files/<name>")
def files(name: str) -> Response:
    """Public (unauthenticated) download, like the CDN URLs real output points at."""
    recipe = _files.get(name)
    if recipe is None:
        abort(404)
    return Response(recipe.render(), mimetype=media.AUDIO_MIME[recipe.fmt])
