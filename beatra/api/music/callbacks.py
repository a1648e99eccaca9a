"""POST /v1/callbacks/suno: where sunoapi.org sends its (required) callbacks. Public (the URL
is signed per task); a callback can only wake its task's next poll early."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from beatra.api.docs import REQUEST_ID_HEADER, operation
from beatra.errors import not_found
from beatra.music import callbacks
from beatra.runtime import current_runtime

blp = Blueprint("callbacks", __name__, url_prefix="/v1/callbacks")


class SunoCallbackQuerySchema(Schema):
    task = fields.String(required=True, metadata={"description": "Our task id"})
    sig = fields.String(required=True, metadata={"description": "HMAC of the task id"})


class CallbackAckSchema(Schema):
    ok = fields.Boolean(required=True)
    woken = fields.Boolean(required=True)


@blp.route("/suno", methods=["POST"])
@operation(blp, "suno_callback_v1_callbacks_suno_post", auth=False,
           errors={404: "Unknown task or bad signature"})
@blp.arguments(SunoCallbackQuerySchema, location="query")
@blp.response(200, CallbackAckSchema, headers=REQUEST_ID_HEADER,
              description="Callback received")
def suno_callback(query: dict[str, Any]) -> dict[str, Any]:
    """Receive a sunoapi.org generation callback (text / first / complete)"""
    if not callbacks.valid(query["task"], query["sig"]):
        raise not_found("No such callback.")
    body = request.get_json(silent=True)
    return {"ok": True, "woken": callbacks.handle(query["task"], body, current_runtime())}
