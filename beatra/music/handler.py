"""The task handler for both music capabilities. Runs in a worker with the task claimed.

MiniMax: one synchronous call (minutes; the provider's read_timeout and the actor's 20-minute
time limit allow it). A cancel during the call takes effect at the checkpoint after it: the
audio is discarded and the hold refunded.

Suno: step 1 submits and returns Wait; every later step polls record-info once and returns
Wait with a growing delay (2 s x1.5 up to 15 s) until SUCCESS or a failure, so a parked task
holds no worker (delayed broker messages, not sleeps) and a cancel between polls is immediate.
A sunoapi callback can wake a parked task early (beatra.music.callbacks).

Output: {"tracks": [{index, artifact_id, url (added on read), mime_type, duration_ms, title,
lyrics}]}; every track is copied into our artifact store and probed (duration > 0).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from beatra.catalog.model import Model, Route
from beatra.catalog.registry import current_catalog, usable_routes
from beatra.errors import ApiError
from beatra.extensions import db
from beatra.music import callbacks, pricing
from beatra.music.options import MINIMAX, MusicPlan
from beatra.providers import minimax_music, suno_api
from beatra.providers.failures import ProviderFailure
from beatra.providers.minimax_music import MusicRequest, MusicResult
from beatra.providers.output_files import DownloadError, download
from beatra.providers.suno_api import SunoRequest
from beatra.storage.service import content_url, get_artifact, save_bytes
from beatra.tasks.context import TaskContext
from beatra.tasks.handlers import Done, TaskFailure, Wait
from beatra.tasks.routing import first_route, first_route_answer

log = logging.getLogger(__name__)

KIND = {MINIMAX: "minimax", "suno": "sunoapi"}
ROUTE_WAIT_SECONDS = 10.0
MAX_ROUTE_WAITS = 3
# Suno polling (catalog params may override: poll_first_seconds, poll_max_seconds,
# max_poll_seconds).
POLL_FIRST_SECONDS = 2.0
POLL_FACTOR = 1.5
POLL_MAX_SECONDS = 15.0
MAX_POLL_SECONDS = 20 * 60  # sunoapi finishes in ~2-3 minutes; past this we give up
MAX_POLL_ERRORS = 5  # consecutive transient record-info failures before failing
MAX_SUBMIT_THROTTLES = 5
# The signed URL an upstream fetches the reference audio from.
REFERENCE_URL_TTL_SECONDS = 3600
SUNO_STAGES = {"PENDING": ("upstream_queued", 10), "TEXT_SUCCESS": ("lyrics_ready", 35),
               "FIRST_SUCCESS": ("first_track_ready", 65)}


def run_music_task(ctx: TaskContext) -> Done | Wait:
    model = current_catalog().model(ctx.model)
    if model is None:
        raise TaskFailure("model_unavailable", f"Model '{ctx.model}' is no longer offered.")
    plan = MusicPlan.from_state(ctx.state["plan"])
    if plan.family == MINIMAX:
        return _minimax(ctx, model, plan)
    return _suno(ctx, model, plan)


def _routes(ctx: TaskContext, model: Model, family: str) -> list[Route] | Wait:
    routes = [r for r in usable_routes(model) if r.provider.kind == KIND[family]]
    if routes:
        return routes
    waits = ctx.state.get("route_waits", 0)
    if waits < MAX_ROUTE_WAITS:  # every circuit open: check again shortly
        ctx.progress("waiting_for_upstream", 5)
        return Wait(ROUTE_WAIT_SECONDS, state={**ctx.state, "route_waits": waits + 1})
    raise TaskFailure("model_unavailable", f"Model '{model.id}' has no upstream available "
                      "right now.", retryable=True)


def _reference_url(ctx: TaskContext) -> str:
    ref = ctx.input["reference_audio"]
    artifact = get_artifact(ctx.account_id, ref["artifact_id"])
    if artifact is None:
        raise TaskFailure("invalid_request", f"Reference audio {ref['artifact_id']} no longer "
                          "exists.")
    url = content_url(artifact, ttl_seconds=REFERENCE_URL_TTL_SECONDS)
    db.session.commit()  # no transaction held open across the upstream call
    return url


def _store(ctx: TaskContext, index: int, data: bytes, title: str | None,
           lyrics: str | None) -> dict[str, Any]:
    try:
        artifact = save_bytes(ctx.account_id, data, purpose="task_output",
                              metadata={"task_id": ctx.task_id, "index": index})
    except ApiError as err:
        raise TaskFailure("upstream_error", f"The upstream sent unreadable audio: "
                          f"{err.message}", retryable=True) from None
    if artifact.media_type != "audio" or not artifact.duration_ms:
        raise TaskFailure("upstream_error", f"The upstream sent {artifact.mime_type} without a "
                          "playable duration, not audio.", retryable=True)
    return {"index": index, "artifact_id": artifact.id, "mime_type": artifact.mime_type,
            "duration_ms": artifact.duration_ms, "size_bytes": artifact.size_bytes,
            "title": title, "lyrics": lyrics}


def _done(tracks: list[dict[str, Any]], extra_output: dict[str, Any]) -> Done:
    durations = [t["duration_ms"] for t in tracks]
    seconds = pricing.audio_seconds(durations)
    return Done(output={"tracks": tracks, **extra_output},
                meters=pricing.usage_meters(durations),
                usage={"audio_seconds": float(seconds)})  # songs: the `song` usage line


# --- MiniMax ------------------------------------------------------------------------------


def _minimax(ctx: TaskContext, model: Model, plan: MusicPlan) -> Done | Wait:
    routes = _routes(ctx, model, MINIMAX)
    if isinstance(routes, Wait):
        return routes
    cover_url = _reference_url(ctx) if plan.cover else None
    ctx.checkpoint()
    ctx.progress("generating", 10)

    def attempt(route: Route) -> MusicResult:
        upstream_model = (str(model.params.get("cover_model", "music-cover")) if plan.cover
                          else route.upstream_model)
        req = MusicRequest(upstream_model=upstream_model, prompt=plan.prompt, lyrics=plan.lyrics,
                           instrumental=plan.instrumental,
                           lyrics_optimizer=plan.lyrics_optimizer,
                           audio_setting=plan.audio_setting,
                           output_format=str(model.params.get("output_format", "hex")),
                           cover_audio_url=cover_url)
        return minimax_music.generate(route, req)

    result = first_route_answer(ctx, routes, attempt)
    ctx.checkpoint()  # canceled while MiniMax worked: the late result is discarded here
    ctx.progress("storing", 90)
    track = _store(ctx, 0, result.audio, plan.title, plan.lyrics)
    if result.duration_ms and abs(result.duration_ms - track["duration_ms"]) > 1000:
        log.info("minimax duration differs from the file", extra={"fields": {
            "task_id": ctx.task_id, "reported_ms": result.duration_ms,
            "probed_ms": track["duration_ms"]}})
    return _done([track], {})


# --- Suno ---------------------------------------------------------------------------------


def _param(model: Model, name: str, default: float) -> float:
    value = model.params.get(name, default)
    return float(value) if isinstance(value, int | float) and value > 0 else default


def _delay(model: Model, polls: int) -> float:
    first = _param(model, "poll_first_seconds", POLL_FIRST_SECONDS)
    return min(_param(model, "poll_max_seconds", POLL_MAX_SECONDS), first * POLL_FACTOR ** polls)


def _suno(ctx: TaskContext, model: Model, plan: MusicPlan) -> Done | Wait:
    state = ctx.state.get("suno")
    if state is None:
        return _suno_submit(ctx, model, plan)
    route = next((r for r in model.routes if r.provider.name == state["provider"]), None)
    if route is None or not route.provider.configured:
        raise TaskFailure("model_unavailable", f"The upstream {state['provider']} running this "
                          "task is no longer configured.")
    try:
        record = suno_api.record_info(route, state["task_id"])
    except ProviderFailure as failure:
        errors = state.get("errors", 0) + 1
        if failure.retryable and errors < MAX_POLL_ERRORS:
            log.warning("suno poll failed; will retry", extra={"fields": {
                "task_id": ctx.task_id, "code": failure.code, "errors": errors}})
            return Wait(_delay(model, state["polls"]),
                        state={**ctx.state, "suno": {**state, "errors": errors}})
        raise TaskFailure(failure.code, failure.message, retryable=failure.retryable) from None
    if record.pending:
        waited = time.time() - state["submitted_at"]
        if waited > _param(model, "max_poll_seconds", MAX_POLL_SECONDS):
            raise TaskFailure("upstream_error", f"Suno did not finish within {waited:.0f} s.",
                              retryable=True)
        stage, percent = SUNO_STAGES[record.status]
        ctx.progress(stage, percent)
        polls = state["polls"] + 1
        return Wait(_delay(model, polls),
                    state={**ctx.state, "suno": {**state, "polls": polls, "errors": 0}})
    if not record.done:
        lost = record.failure()
        raise TaskFailure(lost.code, lost.message, retryable=lost.retryable)
    ctx.checkpoint()
    ctx.progress("storing", 90)
    clips = [c for c in record.clips if c.audio_url]
    if not clips:
        raise TaskFailure("upstream_error", "Suno finished without audio.", retryable=True)
    tracks = []
    for index, clip in enumerate(clips):
        try:
            data = download(clip.audio_url, read_timeout=route.provider.read_timeout)
        except DownloadError as err:
            raise TaskFailure("upstream_error", f"Suno's audio URL failed: {err.message}",
                              retryable=err.retryable) from None
        title = plan.title or clip.title
        tracks.append(_store(ctx, index, data, title, clip.lyrics or plan.lyrics))
        ctx.checkpoint()
    return _done(tracks, {"upstream_task_id": state["task_id"]})


def _suno_submit(ctx: TaskContext, model: Model, plan: MusicPlan) -> Done | Wait:
    routes = _routes(ctx, model, "suno")
    if isinstance(routes, Wait):
        return routes
    upload_url = _reference_url(ctx) if plan.cover else None
    ctx.checkpoint()
    ctx.progress("submitting", 5)

    def submit(route: Route) -> str:
        req = SunoRequest(version=route.upstream_model, custom_mode=plan.custom_mode,
                          instrumental=plan.instrumental,
                          prompt=(plan.lyrics or "") if plan.custom_mode else plan.prompt,
                          style=plan.style, title=plan.title if plan.custom_mode else None,
                          callback_url=callbacks.callback_url(ctx.task_id),
                          upload_url=upload_url, extra=plan.suno_extra)
        return suno_api.submit(route, req)

    # Routes are tried in order while they refuse the job outright (suno_api.REFUSALS); the
    # job then stays on the route that took it.
    try:
        route, upstream_id = first_route(ctx, routes, submit)
    except ProviderFailure as failure:
        throttles = ctx.state.get("submit_throttles", 0)
        if failure.code == "rate_limited" and throttles < MAX_SUBMIT_THROTTLES:
            return Wait(_delay(model, throttles + 1),
                        state={**ctx.state, "submit_throttles": throttles + 1})
        raise TaskFailure(failure.code, failure.message, retryable=failure.retryable) from None
    state = {**ctx.state, "suno": {"task_id": upstream_id, "provider": route.provider.name,
                                   "polls": 0, "errors": 0, "submitted_at": time.time()}}
    ctx.save_state(state)  # before anything else can fail: never submit the same task twice
    ctx.progress(*SUNO_STAGES["PENDING"])
    return Wait(_delay(model, 0), state=state)
