"""Sandbox GPT Image endpoints: generations (JSON) and edits (multipart image[])."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from sandbox_helpers import AUTH

from beatra.sandbox import media


def decode(item: dict) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))


def gen(sbx, **body):
    return sbx.post("/openai/v1/images/generations", json=body, headers=AUTH)


def test_generation_size_format_and_usage(sbx):
    resp = gen(sbx, model="gpt-image-2", prompt="a red fox in snow", n=2, size="512x768",
               quality="medium", output_format="webp")
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["output_format"], body["quality"], body["size"]) == ("webp", "medium",
                                                                      "512x768")
    assert body["background"] == "opaque" and isinstance(body["created"], int)
    images = [decode(item) for item in body["data"]]
    assert [(im.format, im.size) for im in images] == [("WEBP", (512, 768))] * 2
    usage = body["usage"]
    per_image = round(1056 * 512 * 768 / 1024**2)
    assert usage["output_tokens"] == usage["output_tokens_details"]["image_tokens"] == 2 * per_image
    assert usage["input_tokens_details"] == {"image_tokens": 0, "text_tokens": 5}
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_generation_defaults_and_transparency(sbx):
    body = gen(sbx, model="gpt-image-1", prompt="logo", size="auto", quality="high",
               background="transparent").get_json()
    image = decode(body["data"][0])
    assert (image.format, image.size, image.mode) == ("PNG", (1024, 1024), "RGBA")
    assert body["usage"]["output_tokens"] == 4160 and body["background"] == "transparent"
    jpeg = gen(sbx, model="gpt-image-1", prompt="x", size="256x256", quality="low",
               output_format="jpeg", output_compression=50).get_json()
    assert decode(jpeg["data"][0]).format == "JPEG"
    assert jpeg["usage"]["output_tokens"] == round(272 / 16)


@pytest.mark.parametrize(("body", "param"), [
    ({"prompt": "x"}, "model"),
    ({"model": "gpt-image-1", "prompt": "x", "response_format": "b64_json"}, "response_format"),
    ({"model": "gpt-image-2", "prompt": "x", "size": "1000x1000"}, "size"),
    ({"model": "gpt-image-2", "prompt": "x", "size": "3840x512"}, "size"),
    ({"model": "gpt-image-2", "prompt": "x", "n": 11}, "n"),
    ({"model": "gpt-image-2", "prompt": "x", "quality": "ultra"}, "quality"),
    ({"model": "gpt-image-2", "prompt": "x", "output_format": "gif"}, "output_format"),
    ({"model": "gpt-image-2", "prompt": "x", "background": "transparent",
      "output_format": "jpeg"}, "background"),
])
def test_generation_validation(sbx, body, param):
    resp = gen(sbx, **body)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["param"] == param


def test_generation_faults(sbx):
    policy = gen(sbx, model="gpt-image-2", prompt="bad [sandbox:policy]")
    assert policy.status_code == 400
    err = policy.get_json()["error"]
    assert (err["code"], err["type"]) == ("moderation_blocked", "image_generation_user_error")
    assert gen(sbx, model="gpt-image-2", prompt="x [sandbox:fail=503]").status_code == 503
    garbage = gen(sbx, model="gpt-image-2", prompt="x [sandbox:malformed]", size="64x64")
    assert garbage.status_code == 200 and garbage.get_json(silent=True) is None
    no_auth = sbx.post("/openai/v1/images/generations", json={"model": "gpt-image-2"})
    assert no_auth.status_code == 401


def png(size=(32, 32), seed=0) -> bytes:
    return media.image_bytes(size[0], size[1], "png", seed)


def edit(sbx, files, **fields):
    data = {"model": "gpt-image-2", "prompt": "make it blue", "size": "256x256", **fields}
    data.update(files)
    return sbx.post("/openai/v1/images/edits", data=data, headers=AUTH,
                    content_type="multipart/form-data")


def test_edit_with_sixteen_images(sbx):
    parts = [(io.BytesIO(png(seed=i)), f"in{i}.png") for i in range(16)]
    resp = edit(sbx, {"image[]": parts}, output_format="jpeg", n="2")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert len(body["data"]) == 2
    assert decode(body["data"][0]).size == (256, 256)
    assert body["usage"]["input_tokens_details"]["image_tokens"] == 16 * 323
    one = edit(sbx, {"image": (io.BytesIO(png()), "a.png")}).get_json()
    assert one["usage"]["input_tokens_details"]["image_tokens"] == 323


def test_edit_rejects_seventeen_images_and_bad_files(sbx):
    parts = [(io.BytesIO(png()), f"in{i}.png") for i in range(17)]
    too_many = edit(sbx, {"image[]": parts})
    assert too_many.status_code == 400 and too_many.get_json()["error"]["param"] == "image"
    broken = edit(sbx, {"image[]": [(io.BytesIO(b"not an image"), "x.png")]})
    assert broken.status_code == 400
    assert edit(sbx, {}).status_code == 400
    mismatched = edit(sbx, {"image[]": [(io.BytesIO(png()), "a.png")],
                            "mask": (io.BytesIO(png((64, 64))), "m.png")})
    assert mismatched.status_code == 400 and mismatched.get_json()["error"]["param"] == "mask"
