"""ChatCompletionRequest exactly as the contract describes it.

Unknown fields are allowed (the contract sets no additionalProperties: false) and are passed
through to the upstream. Rules the contract implies but does not encode as JSON Schema (e.g.
top_logprobs needs logprobs) are checked in `validates_schema` hooks so they keep a `param`.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from beatra.api.fastload import FastLoading
from beatra.api.strict import StrictBoolean, StrictFloat, StrictInteger, token_count
from beatra.api.unions import StringOr, TaggedUnion

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class _Open(FastLoading):
    class Meta:
        unknown = INCLUDE


def _const(value: str, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf([value]), **kwargs)


def _nullable_str() -> fields.String:
    return fields.String(allow_none=True)


class TextContentPartSchema(_Open):
    type = _const("text", required=True)
    text = fields.String(required=True)


class ImageUrlDataSchema(_Open):
    url = fields.String(required=True)
    detail = fields.String(allow_none=True, load_default=None,
                           validate=validate.OneOf(["auto", "low", "high"]))


class ImageUrlContentPartSchema(_Open):
    type = _const("image_url", required=True)
    image_url = fields.Nested(ImageUrlDataSchema, required=True)


class InputAudioDataSchema(_Open):
    data = fields.String(required=True, metadata={"description": "base64-encoded audio bytes"})
    format = fields.String(required=True, validate=validate.OneOf(["wav", "mp3"]))


class InputAudioContentPartSchema(_Open):
    type = _const("input_audio", required=True)
    input_audio = fields.Nested(InputAudioDataSchema, required=True)


class FileDataSchema(_Open):
    file_id = _nullable_str()
    file_data = _nullable_str()
    filename = _nullable_str()


class FileContentPartSchema(_Open):
    type = _const("file", required=True)
    file = fields.Nested(FileDataSchema, required=True)


_USER_PARTS = {
    "text": TextContentPartSchema,
    "image_url": ImageUrlContentPartSchema,
    "input_audio": InputAudioContentPartSchema,
    "file": FileContentPartSchema,
}


def _text_parts(**kwargs: Any) -> StringOr:
    return StringOr(fields.List(fields.Nested(TextContentPartSchema)), **kwargs)


class SystemMessageSchema(_Open):
    role = fields.String(required=True, validate=validate.OneOf(["system", "developer"]))
    content = _text_parts(required=True)
    name = _nullable_str()


class UserMessageSchema(_Open):
    role = _const("user", required=True)
    content = StringOr(fields.List(TaggedUnion("type", _USER_PARTS)), required=True)
    name = _nullable_str()


class ToolCallFunctionSchema(_Open):
    name = fields.String(required=True)
    arguments = fields.String(required=True, metadata={"description": "JSON-stringified"})


class ToolCallSchema(_Open):
    id = fields.String(required=True)
    type = _const("function", load_default="function")
    function = fields.Nested(ToolCallFunctionSchema, required=True)


class AssistantAudioSchema(_Open):
    id = _nullable_str()
    data = _nullable_str()
    expires_at = fields.Integer(allow_none=True)
    transcript = _nullable_str()


class AssistantMessageSchema(_Open):
    role = _const("assistant", required=True)
    content = _text_parts(allow_none=True)
    refusal = _nullable_str()
    reasoning_content = fields.String(
        allow_none=True,
        metadata={"description": "Chain-of-thought, normalised by beatra. Clients should NOT "
                                 "echo it back next turn."},
    )
    tool_calls = fields.List(fields.Nested(ToolCallSchema), allow_none=True)
    audio = fields.Nested(AssistantAudioSchema, allow_none=True)
    name = _nullable_str()


class ToolMessageSchema(_Open):
    role = _const("tool", required=True)
    content = _text_parts(required=True)
    tool_call_id = fields.String(required=True)


MESSAGE_SCHEMAS = {
    "system": SystemMessageSchema,
    "developer": SystemMessageSchema,
    "user": UserMessageSchema,
    "assistant": AssistantMessageSchema,
    "tool": ToolMessageSchema,
}


def _tool_name(value: str) -> None:
    if not _TOOL_NAME.match(value):
        raise ValidationError("Must be 1-64 characters of a-z, A-Z, 0-9, '_' or '-'.")


class FunctionDefinitionSchema(_Open):
    name = fields.String(required=True, validate=_tool_name)
    description = _nullable_str()
    parameters = fields.Dict(metadata={"description": "JSON Schema"})
    strict = StrictBoolean(allow_none=True)


class ToolSchema(_Open):
    type = _const("function", load_default="function")
    function = fields.Nested(FunctionDefinitionSchema, required=True)


class NamedFunctionChoiceSchema(_Open):
    type = _const("function", required=True)
    function = fields.Dict(required=True, metadata={"description": "{name: str}"})

    @validates_schema
    def _name(self, data: dict[str, Any], **_: Any) -> None:
        if not isinstance(data["function"].get("name"), str):
            raise ValidationError({"function": {"name": ["Missing data for required field."]}})


class ToolChoice(fields.Field):
    """"none" | "auto" | "required" | {type: function, function: {name}}."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {"anyOf": [{"type": "string"},
                                        {"$ref": "#/components/schemas/NamedFunctionChoice"},
                                        {"type": "null"}]}
        super().__init__(allow_none=True, **kwargs)
        self._named = NamedFunctionChoiceSchema()

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            if value not in ("none", "auto", "required"):
                raise ValidationError("Must be 'none', 'auto', 'required' or a function choice.")
            return value
        if isinstance(value, dict):
            try:
                return self._named.load(value)
            except ValidationError as exc:
                raise ValidationError(exc.messages) from None
        raise ValidationError("Must be a string or an object.")


class ResponseFormatTextSchema(_Open):
    type = _const("text", load_default="text")


class ResponseFormatJsonObjectSchema(_Open):
    type = _const("json_object", load_default="json_object")


class JsonSchemaDefSchema(_Open):
    name = fields.String(required=True, metadata={"description": "Identifier for the schema"})
    description = _nullable_str()
    schema = fields.Dict(required=True, metadata={"description": "JSON Schema"})
    strict = StrictBoolean(allow_none=True)


class ResponseFormatJsonSchemaSchema(_Open):
    type = _const("json_schema", load_default="json_schema")
    json_schema = fields.Nested(JsonSchemaDefSchema, required=True)


class StreamOptionsSchema(_Open):
    include_usage = StrictBoolean(load_default=False)


class AudioOutputConfigSchema(_Open):
    voice = fields.String(required=True)
    format = fields.String(required=True,
                           validate=validate.OneOf(["wav", "mp3", "flac", "opus", "pcm16"]))


def _non_empty(value: list[Any]) -> None:
    if not value:
        raise ValidationError("At least one message is required.")


class Stop(fields.Field):
    def __init__(self, **kwargs: Any) -> None:
        kwargs["metadata"] = {"anyOf": [{"type": "string"},
                                        {"type": "array", "items": {"type": "string"}},
                                        {"type": "null"}]}
        super().__init__(allow_none=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            if len(value) > 4:
                raise ValidationError("At most 4 stop sequences.")
            return value
        raise ValidationError("Must be a string or an array of strings.")


def _number(lo: float, hi: float) -> StrictFloat:
    return StrictFloat(allow_none=True, validate=validate.Range(lo, hi))


# Other providers' names for an output cap or a choice count: passing them through would let a
# caller receive more than the reserve was computed for.
_UNBOUNDED_SPELLINGS = frozenset({
    "max_output_tokens", "max_new_tokens", "max_length", "maxOutputTokens", "max_gen_len",
    "num_predict", "best_of", "num_return_sequences", "candidate_count", "candidateCount",
})


class ChatCompletionRequestSchema(_Open):
    """Request body for POST /v1/chat/completions (OpenAI-compatible; `model_options` is ours)."""

    @property
    def protected(self) -> frozenset[str]:
        """Every field this schema defines: model_options may not override any of them."""
        return frozenset(self.declared_fields)

    model = fields.String(required=True,
                          metadata={"description": "Model name (e.g. 'gpt-4o-mini', 'auto')"})
    messages = fields.List(TaggedUnion("role", MESSAGE_SCHEMAS), required=True,
                           validate=_non_empty)
    temperature = _number(0, 2)
    top_p = _number(0, 1)
    max_tokens = StrictInteger(allow_none=True, validate=token_count,
                               metadata={"description": "Legacy; mapped per model."})
    max_completion_tokens = StrictInteger(allow_none=True, validate=token_count)
    n = StrictInteger(allow_none=True, validate=validate.Range(1, 10))
    seed = StrictInteger(allow_none=True)
    stop = Stop()
    stream = StrictBoolean(load_default=False)
    stream_options = fields.Nested(StreamOptionsSchema, allow_none=True)
    frequency_penalty = _number(-2, 2)
    presence_penalty = _number(-2, 2)
    logit_bias = fields.Dict(keys=fields.String(), values=StrictFloat(), allow_none=True)
    logprobs = StrictBoolean(allow_none=True)
    top_logprobs = StrictInteger(allow_none=True, validate=validate.Range(0, 20))
    tools = fields.List(fields.Nested(ToolSchema), allow_none=True)
    tool_choice = ToolChoice()
    parallel_tool_calls = StrictBoolean(allow_none=True)
    response_format = TaggedUnion(
        "type",
        {"text": ResponseFormatTextSchema, "json_object": ResponseFormatJsonObjectSchema,
         "json_schema": ResponseFormatJsonSchemaSchema},
        allow_none=True,
    )
    reasoning_effort = fields.String(allow_none=True, validate=validate.OneOf(
        ["minimal", "low", "medium", "high"]))
    audio = fields.Nested(AudioOutputConfigSchema, allow_none=True)
    modalities = fields.List(fields.String(validate=validate.OneOf(["text", "audio"])),
                             allow_none=True)
    metadata = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    store = StrictBoolean(allow_none=True)
    service_tier = _nullable_str()
    safety_identifier = _nullable_str()
    prompt_cache_key = _nullable_str()
    user = fields.String(allow_none=True, metadata={"description": "Deprecated; use "
                                                                   "safety_identifier"})
    model_options = fields.Dict(allow_none=True,
                                metadata={"description": "beatra extension; per-model "
                                                         "passthrough"})

    @validates_schema
    def _bound_fields(self, data: dict[str, Any], **_: Any) -> None:
        """What the reserve, routing and relay depend on comes only from the schema's own
        fields: model_options may not set them, and no other token-limit spelling passes."""
        for name in _UNBOUNDED_SPELLINGS & data.keys():
            raise ValidationError(f"'{name}' is not supported; use max_completion_tokens (or "
                                  "max_tokens) and n.", name)
        options = data.get("model_options") or {}
        for name in sorted(options.keys() & (self.protected | _UNBOUNDED_SPELLINGS)):
            raise ValidationError({name: [
                f"'{name}' cannot be set in model_options: it decides what the call may cost "
                "or how it is routed and relayed; set the top-level field instead."]},
                "model_options")

    @validates_schema
    def _combinations(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("top_logprobs") is not None and not data.get("logprobs"):
            raise ValidationError("requires logprobs: true", "top_logprobs")
        if data.get("stream_options") is not None and not data.get("stream"):
            raise ValidationError("only allowed when stream is true", "stream_options")
        if "audio" in (data.get("modalities") or []) and not data.get("audio"):
            raise ValidationError("required when modalities include 'audio'", "audio")
        choice = data.get("tool_choice")
        if isinstance(choice, dict) or choice == "required":
            names = {t["function"]["name"] for t in data.get("tools") or []}
            if not names:
                raise ValidationError("needs tools", "tool_choice")
            if isinstance(choice, dict) and choice["function"]["name"] not in names:
                raise ValidationError({"function": {"name": ["No tool with this name."]}},
                                      "tool_choice")


# Components referenced from union fields (not reachable through Nested); registered first.
UNION_COMPONENTS: list[type[Schema]] = [
    SystemMessageSchema, UserMessageSchema, AssistantMessageSchema, ToolMessageSchema,
    TextContentPartSchema, ImageUrlContentPartSchema, InputAudioContentPartSchema,
    FileContentPartSchema, NamedFunctionChoiceSchema, ResponseFormatTextSchema,
    ResponseFormatJsonObjectSchema, ResponseFormatJsonSchemaSchema,
]


# ---- response (documentation; the relay builds the JSON itself) --------------------------

class LogprobTokenSchema(Schema):
    token = fields.String(required=True)
    logprob = fields.Float(required=True)
    bytes = fields.List(fields.Integer(), allow_none=True)
    top_logprobs = fields.List(fields.Dict())


class LogprobsSchema(Schema):
    content = fields.List(fields.Nested(LogprobTokenSchema), allow_none=True)
    refusal = fields.List(fields.Nested(LogprobTokenSchema), allow_none=True)


class ChatChoiceSchema(Schema):
    index = fields.Integer(required=True)
    message = fields.Nested(AssistantMessageSchema, required=True)
    finish_reason = fields.String(required=True, allow_none=True, validate=validate.OneOf(
        ["stop", "length", "tool_calls", "content_filter", "function_call"]))
    logprobs = fields.Nested(LogprobsSchema, allow_none=True)


class PromptTokensDetailsSchema(Schema):
    cached_tokens = fields.Integer(dump_default=0)
    audio_tokens = fields.Integer(dump_default=0)


class CompletionTokensDetailsSchema(Schema):
    reasoning_tokens = fields.Integer(dump_default=0)
    audio_tokens = fields.Integer(dump_default=0)
    accepted_prediction_tokens = fields.Integer(dump_default=0)
    rejected_prediction_tokens = fields.Integer(dump_default=0)


_DECIMAL = r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$"


class ChatUsageSchema(Schema):
    prompt_tokens = fields.Integer(required=True)
    completion_tokens = fields.Integer(required=True)
    total_tokens = fields.Integer(required=True)
    prompt_tokens_details = fields.Nested(PromptTokensDetailsSchema, allow_none=True)
    completion_tokens_details = fields.Nested(CompletionTokensDetailsSchema, allow_none=True)
    credits = fields.String(allow_none=True, validate=validate.Regexp(_DECIMAL),
                            metadata={"description": "Credits charged for this call."})
    credits_usd_reference = fields.String(
        allow_none=True, validate=validate.Regexp(_DECIMAL),
        metadata={"description": "credits / credits_per_usd. Display only."})


class ChatCompletionResponseSchema(Schema):
    id = fields.String(required=True)
    object = fields.Constant("chat.completion")
    created = fields.Integer(required=True)
    model = fields.String(required=True, metadata={"description": "The catalog model that "
                                                                  "served the call"})
    system_fingerprint = _nullable_str()
    service_tier = _nullable_str()
    choices = fields.List(fields.Nested(ChatChoiceSchema), required=True)
    usage = fields.Nested(ChatUsageSchema, required=True)
