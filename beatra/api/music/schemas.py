"""TextToMusicRequest and ReferenceAudioToMusicRequest exactly as the contract describes them
(closed objects: unknown fields are a 422). Length limits depend on the model family and are
checked by beatra.music.options, so the schema keeps the contract's bounds."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from beatra.api.media_inputs import media_input
from beatra.api.strict import StrictBoolean

MODELS = ["auto", "minimax-music-2.6", "suno-5.5"]


class MusicModelOptionsSchema(Schema):
    """Model-family scoped public options for music generation."""

    suno = fields.Dict(allow_none=True, load_default=None)
    minimax = fields.Dict(allow_none=True, load_default=None)


class TextToMusicRequestSchema(Schema):
    model = fields.String(required=True, validate=validate.OneOf(MODELS))
    prompt = fields.String(required=True, validate=validate.Length(min=1), metadata={
        "description": "Music concept, style, mood, genre, or instrumentation prompt."})
    lyrics = fields.String(allow_none=True, load_default=None, metadata={
        "description": "Optional lyrics text. Must be omitted for instrumental music."})
    instrumental = StrictBoolean(load_default=False, metadata={
        "description": "When true, generate instrumental music without vocals."})
    title = fields.String(allow_none=True, load_default=None)
    metadata = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True,
                           load_default=None, metadata={
                               "description": "Caller-supplied metadata: at most 16 keys, "
                                              "keys 1-64 and values at most 512 characters."})
    model_options = fields.Nested(MusicModelOptionsSchema, allow_none=True, load_default=None,
                                  metadata={"description": "Options grouped by public music "
                                                           "model family."})


class ReferenceAudioToMusicRequestSchema(TextToMusicRequestSchema):
    reference_audio = media_input(required=True)
