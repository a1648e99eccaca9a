"""POST /v1/chat/completions (OpenAI-compatible, sync or SSE)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

from beatra.api.chat.schemas import ChatCompletionRequestSchema, ChatCompletionResponseSchema
from beatra.api.docs import REQUEST_ID_HEADER, documents, operation
from beatra.auth import current_caller
from beatra.catalog.registry import current_catalog
from beatra.chat import relay
from beatra.request_id import current_request_id

blp = Blueprint("chat", __name__, url_prefix="/v1")

# The sync JSON body is listed here too: this content map replaces the one @blp.response builds.
_STREAM_DOC = {"responses": {"200": {"content": {
    "application/json": {"schema": ChatCompletionResponseSchema},
    "text/event-stream": {"schema": {
        "type": "string",
        "description": "Server-Sent Events: `data: <ChatCompletionChunk>` events followed by "
                       "`data: [DONE]`. A failure after streaming began arrives as an "
                       "`event: error` whose data is the error envelope, then `data: [DONE]`.",
    }},
}}}}


@blp.route("/chat/completions", methods=["POST"])
@operation(blp, "chat_completions_v1_chat_completions_post", idempotent=True, errors={
    402: "Account balance too low",
    502: "Model request failed",
    503: "Model temporarily unavailable",
})
# An instance, not the class: webargs would build (and deep-copy) a new schema per request.
@blp.arguments(ChatCompletionRequestSchema())
@blp.response(200, ChatCompletionResponseSchema, headers=REQUEST_ID_HEADER,
              description="Sync completion or streaming chat completion chunks")
@documents(blp.doc(**_STREAM_DOC))
def chat_completions(body: dict[str, Any]) -> Response:
    """Create chat completion (OpenAI-compatible)

    Creates a chat completion using an OpenAI-compatible request and response shape. Set
    `stream=true` to receive Server-Sent Events with `chat.completion.chunk` payloads. Use
    `model="auto"` to let beatra choose a capable model, or pass a specific model id returned
    by `/v1/models`.
    """
    caller = current_caller()
    return relay.complete(body, caller.account_id, caller.key_id, current_request_id(),
                          current_catalog())
