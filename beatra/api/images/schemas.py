"""TextToImageRequest and ImageToImageRequest exactly as the contract describes them
(closed objects: unknown fields are a 422)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from beatra.api.media_inputs import media_input

MODELS = ["auto", "gpt-image-2"]
QUALITIES = ["standard", "hd"]
ASPECT_RATIOS = ["auto", "1:1", "16:9", "9:16", "4:3", "3:4", "2:1"]
OUTPUT_FORMATS = ["png", "jpeg", "webp"]


class TextToImageRequestSchema(Schema):
    model = fields.String(required=True, validate=validate.OneOf(MODELS))
    prompt = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    quality = fields.String(load_default="standard", validate=validate.OneOf(QUALITIES),
                            metadata={"description": "standard → medium, hd → high"})
    aspect_ratio = fields.String(load_default="auto", validate=validate.OneOf(ASPECT_RATIOS))
    output_format = fields.String(load_default="png", validate=validate.OneOf(OUTPUT_FORMATS))
    n = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=4))


class ImageToImageRequestSchema(TextToImageRequestSchema):
    image = media_input(required=True)
    extra_images = fields.List(media_input(), allow_none=True, load_default=None,
                               validate=validate.Length(max=15), metadata={
                                   "description": "0..15 additional input images. With "
                                                  "`image`, total 1..16."})
