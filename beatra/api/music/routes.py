"""POST /v1/music/text-to-music and /v1/music/reference-audio-to-music → 202 with a queued task.
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from beatra.api.docs import REQUEST_ID_HEADER, operation
from beatra.api.music.schemas import (
    ReferenceAudioToMusicRequestSchema,
    TextToMusicRequestSchema,
)
from beatra.api.tasks.accepted import accepted
from beatra.api.tasks.schemas import TaskEnvelopeSchema
from beatra.auth import current_caller
from beatra.music import service

blp = Blueprint("music", __name__, url_prefix="/v1/music")

_ERRORS = {
    402: "Insufficient balance for the task's hold (nothing was queued)",
    503: "The model has no upstream available",
}


@blp.route("/text-to-music", methods=["POST"])
@operation(blp, "text_to_music_v1_music_text_to_music_post", idempotent=True, errors=_ERRORS)
@blp.arguments(TextToMusicRequestSchema)
@blp.response(202, TaskEnvelopeSchema, headers=REQUEST_ID_HEADER, description="Task accepted")
def text_to_music(body: dict[str, Any]) -> dict[str, Any]:
    """Generate music from a prompt and/or lyrics"""
    caller = current_caller()
    return accepted(service.submit_text_to_music(caller.account_id, body, key_id=caller.key_id))


@blp.route("/reference-audio-to-music", methods=["POST"])
@operation(blp, "ref_audio_to_music_v1_music_reference_audio_to_music_post", idempotent=True,
           errors=_ERRORS)
@blp.arguments(ReferenceAudioToMusicRequestSchema)
@blp.response(202, TaskEnvelopeSchema, headers=REQUEST_ID_HEADER, description="Task accepted")
def reference_audio_to_music(body: dict[str, Any]) -> dict[str, Any]:
    """Generate music from a reference audio"""
    caller = current_caller()
    return accepted(service.submit_reference_audio_to_music(caller.account_id, body,
                                                            key_id=caller.key_id))
