"""POST /v1/images/generations and /v1/images/image-to-image: validation, option mapping,
the hold, the upstream wire format, stored outputs, usage and billing, upstream failures."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import responses
from PIL import Image
from sqlalchemy import select
from werkzeug.formparser import parse_form_data

from beatra.billing.models import Hold, LedgerEntry
from beatra.extensions import db
from tests.unit.media_helpers import serve
from tests.unit.tasks_helpers import (
    EDIT_A,
    FAST,
    GEN_A,
    GEN_B,
    IMAGES_CATALOG,
    balance,
    data_uri,
    finished,
    image_bytes,
    images_reply,
    ledger,
    openai_error,
    submit,
    usage,
)

APP_SETTINGS = FAST


@pytest.fixture
def upstream(upstream):
    upstream.add_passthru("http://127.0.0.1")  # media inputs fetched from a local server
    return upstream


def _sent_json(mock, index=0):
    return json.loads(mock.calls[index].request.body)


def _sent_form(mock, index=0):
    req = mock.calls[index].request
    body = req.body if isinstance(req.body, bytes) else req.body.encode()
    env = {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
           "CONTENT_TYPE": req.headers["Content-Type"], "REQUEST_METHOD": "POST"}
    _, form, files = parse_form_data(env)
    return form, files


def _content(client, url):
    parts = urlsplit(url)
    resp = client.get(f"{parts.path}?{parts.query}")
    assert resp.status_code == 200
    return resp


def test_text_to_image_runs_stores_and_bills(client, account, upstream, ledger_ok):
    upstream.post(GEN_A, json=images_reply(2, size="1536x864", quality="high", fmt="jpeg",
                                           use=usage(text_in=12, image_out=5000)))
    queued = submit(client, account, prompt="a red fox", quality="hd", aspect_ratio="16:9",
                    output_format="jpeg", n=2)
    assert queued["status"] == "queued" and queued["object"] == "task"
    assert queued["capability"] == "images.generations"
    assert (queued["model"], queued["resolved_model"]) == ("gpt-image-2", "gpt-image-2")
    assert queued["links"]["cancel"].endswith(f"/v1/tasks/{queued['task_id']}/cancel")
    # Hold: (9 prompt bytes + 100) text tokens, 2 x ceil(4160 x 1536*864/1024^2) image tokens,
    # 2 images: 0.109 + 1.053 + 1.0.
    assert queued["billing"]["reserved_credits"] == "2.162"
    assert queued["input"] == {"model": "gpt-image-2", "prompt": "a red fox", "quality": "hd",
                               "aspect_ratio": "16:9", "output_format": "jpeg", "n": 2}

    task = finished(client, account, queued["task_id"])
    assert task["status"] == "succeeded", task
    assert task["resolved_model"] == "gpt-image-2"
    assert task["progress"] == {"stage": "succeeded", "percent": 100, "message": None}
    assert task["error"] is None and task["warnings"] == []
    sent = _sent_json(upstream)
    assert sent == {"model": "up-image", "prompt": "a red fox", "n": 2, "size": "1536x864",
                    "quality": "high", "output_format": "jpeg"}
    assert upstream.calls[0].request.headers["Authorization"] == "Bearer key-a"

    images = task["output"]["images"]
    assert [i["index"] for i in images] == [0, 1]
    for item in images:
        assert (item["mime_type"], item["width"], item["height"]) == ("image/jpeg", 64, 48)
        body = _content(client, item["url"]).data
        assert Image.open(io.BytesIO(body)).format == "JPEG"

    # 12 x 0.001 + 5000 x 0.0001 + 2 x 0.5
    assert task["usage"]["credits"] == "1.512"
    assert task["usage"]["credits_usd_reference"] == "0.01512"
    assert (task["usage"]["image_count"], task["usage"]["image_pixels"]) == (2, 2 * 64 * 48)
    lines = {line["meter"]: line for line in task["usage"]["lines"]}
    assert lines["output_image_token"]["quantity"] == "5000"
    assert lines["output_image_token"]["billed_amount_credits"] == "0.5"
    assert lines["image_count"] == {"meter": "image_count", "quantity": "2", "unit": "image",
                                    "billed_amount_credits": "1",
                                    "billed_amount_credits_usd_reference": "0.01"}
    assert task["billing"] == {"reserved_credits": "2.162", "charged_credits": "1.512",
                               "refunded_credits": "0", "charged_credits_usd_reference": "0.01512",
                               "refunded_credits_usd_reference": "0", "currency": "USD"}
    assert balance(client, account) == Decimal("98.488")
    assert ledger(client.application, task["task_id"]) == [
        ("reserve", Decimal("-2.162")), ("release", Decimal("2.162")),
        ("capture", Decimal("-1.512"))]



def test_the_hold_and_its_ledger_rows_name_the_key_that_asked(client, account, upstream,
                                                                ledger_ok):
    upstream.post(GEN_A, json=images_reply())
    task_id = finished(client, account, submit(client, account)["task_id"])["task_id"]
    with client.application.app_context():
        hold = db.session.scalars(select(Hold).where(Hold.ref == task_id)).one()
        keys = db.session.scalars(select(LedgerEntry.key_id).where(LedgerEntry.ref == task_id))
        assert (hold.key_id, set(keys)) == (account.key_id, {account.key_id})

def test_defaults_and_auto_model(client, account, upstream, ledger_ok):
    upstream.post(GEN_A, json=images_reply(size="1024x1024"))
    task = finished(client, account, submit(client, account, model="auto")["task_id"])
    assert task["status"] == "succeeded"
    assert (task["model"], task["resolved_model"]) == ("auto", "gpt-image-2")
    assert task["warnings"] == [{"code": "auto_routed", "field": "model",
                                 "message": "model 'auto' was routed to gpt-image-2."}]
    assert _sent_json(upstream) == {"model": "up-image", "prompt": "a red fox", "n": 1,
                                    "size": "auto", "quality": "medium", "output_format": "png"}


DROP = object()


@pytest.mark.parametrize(("body", "param"), [
    ({"model": DROP}, "/model"),
    ({"model": "dall-e-3"}, "/model"),
    ({"prompt": ""}, "/prompt"),
    ({"prompt": "   "}, "/prompt"),
    ({"prompt": "x" * 4001}, "/prompt"),
    ({"n": 5}, "/n"),
    ({"n": 0}, "/n"),
    ({"n": 1.5}, "/n"),
    ({"quality": "ultra"}, "/quality"),
    ({"aspect_ratio": "5:4"}, "/aspect_ratio"),
    ({"output_format": "gif"}, "/output_format"),
    ({"response_format": "url"}, "/response_format"),
])
def test_bad_requests_are_422_and_change_nothing(client, account, body, param):
    payload = {"model": "gpt-image-2", "prompt": "a red fox", **body}
    payload = {k: v for k, v in payload.items() if v is not DROP}
    resp = client.post("/v1/images/generations", json=payload, headers=account.headers)
    assert resp.status_code == 422, resp.get_json()
    err = resp.get_json()["error"]
    assert (err["code"], err["param"]) == ("invalid_request", param)
    assert balance(client, account) == Decimal("100")
    assert client.get("/v1/tasks", headers=account.headers).get_json()["data"] == []


def test_insufficient_balance_is_402_before_anything_is_queued(client, make_account, upstream):
    poor = make_account(credits="0.05")
    resp = client.post("/v1/images/generations", json={"model": "gpt-image-2", "prompt": "fox"},
                       headers=poor.headers)
    assert resp.status_code == 402
    err = resp.get_json()["error"]
    assert err["code"] == "insufficient_balance" and err["retryable"] is False
    assert Decimal(err["details"]["required_credits"]) > Decimal("0.05")
    assert client.get("/v1/tasks", headers=poor.headers).get_json()["data"] == []
    assert balance(client, poor) == Decimal("0.05")
    assert len(upstream.calls) == 0


def _catalog(tmp_path: Path, model_yaml: str) -> str:
    base = IMAGES_CATALOG.read_text().split("\nmodels:\n")[0]
    path = tmp_path / "images.yaml"
    path.write_text(f"{base}\nmodels:\n{model_yaml}")
    return str(path)


def test_catalog_limits_clamp_options_with_warnings(make_app, tmp_path, upstream):
    app = make_app(**{**FAST, "catalog_path": _catalog(tmp_path, """
  - id: gpt-image-2
    capabilities: [images.generations, images.image_to_image]
    routes: [{provider: up-a, upstream_model: gpt-image-1}]
    pricing: {output_image_token: "0.0001"}
    limits: {max_n: 2}
    params: {sizes: ["1024x1024", "1536x1024", "1024x1536"]}
""")})
    from beatra.accounts import service

    with app.app_context():
        acct = service.create_account("t", Decimal("100"))
        _, key = service.create_key(acct.id)
    headers = {"Authorization": f"Bearer {key}"}
    client = app.test_client()
    upstream.post(GEN_A, json=images_reply(2, size="1536x1024"))
    resp = client.post("/v1/images/generations", headers=headers, json={
        "model": "gpt-image-2", "prompt": "fox", "n": 4, "aspect_ratio": "16:9"})
    assert resp.status_code == 202
    codes = {(w["code"], w["field"]) for w in resp.get_json()["warnings"]}
    assert codes == {("option_clamped", "n"), ("option_clamped", "aspect_ratio")}
    from beatra.tasks.runtime import runtime_for

    runtime_for(app).join(30)
    sent = _sent_json(upstream)
    assert (sent["n"], sent["size"]) == (2, "1536x1024")


def test_model_not_in_catalog_or_without_key_is_503(make_app, tmp_path):
    from beatra.accounts import service

    app = make_app(**{**FAST, "catalog_path": _catalog(tmp_path, """
  - id: gpt-image-2
    capabilities: [images.generations]
    routes: [{provider: no-key, upstream_model: gpt-image-2}]
    pricing: {}
""")})
    with app.app_context():
        acct = service.create_account("t", Decimal("100"))
        _, key = service.create_key(acct.id)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    no_key = client.post("/v1/images/generations", headers=headers,
                         json={"model": "gpt-image-2", "prompt": "fox"})
    assert no_key.status_code == 503
    assert no_key.get_json()["error"]["code"] == "model_unavailable"
    assert no_key.get_json()["error"]["retryable"] is False
    missing = client.post("/v1/images/image-to-image", headers=headers, json={
        "model": "auto", "prompt": "fox",
        "image": {"type": "data_uri", "data": data_uri(image_bytes())}})
    assert missing.status_code == 503
    assert client.get("/v1/tasks", headers=headers).get_json()["data"] == []


def test_image_to_image_sends_all_sixteen_inputs(client, account, upstream, ledger_ok):
    from beatra.storage.service import save_bytes

    with client.application.app_context():
        uploaded = save_bytes(account.account_id, image_bytes(32, 32, "WEBP"),
                              purpose="media_input").id
    inputs = [image_bytes(40 + i, 30, "PNG", (i * 10, 0, 0)) for i in range(15)]
    upstream.post(EDIT_A, json=images_reply(1, size="auto", use=usage(8, 16 * 323, 1056)))
    queued = submit(client, account, "/v1/images/image-to-image", prompt="merge them",
                    image={"type": "artifact", "artifact_id": uploaded},
                    extra_images=[{"type": "data_uri", "data": data_uri(b)} for b in inputs])
    assert queued["input"]["image"] == {"type": "artifact", "artifact_id": uploaded,
                                        "source": "artifact"}
    assert len(queued["input"]["extra_images"]) == 15
    assert all(ref["source"] == "data_uri" and "data" not in ref
               for ref in queued["input"]["extra_images"])

    task = finished(client, account, queued["task_id"])
    assert task["status"] == "succeeded", task
    assert task["capability"] == "images.image_to_image"
    form, files = _sent_form(upstream)
    parts = files.getlist("image[]")
    assert len(parts) == 16 and not files.getlist("image")
    assert parts[0].mimetype == "image/webp"
    assert [p.read() for p in parts[1:]] == inputs
    assert form.to_dict() == {"model": "up-image", "prompt": "merge them", "n": "1",
                              "size": "auto", "quality": "medium", "output_format": "png"}
    lines = {line["meter"]: line for line in task["usage"]["lines"]}
    assert lines["input_image_token"]["quantity"] == str(16 * 323)
    assert lines["input_image_token"]["billed_amount_credits"] == "10.336"


def test_image_to_image_from_a_url(make_app, upstream, ledger_ok):
    from beatra.accounts import service

    app = make_app(**FAST, net_allowlist="127.0.0.1")
    with app.app_context():
        acct = service.create_account("t", Decimal("100"))
        _, key = service.create_key(acct.id)
    headers = {"Authorization": f"Bearer {key}"}
    png = image_bytes(50, 50)

    def cat(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(len(png)))
        handler.end_headers()
        handler.wfile.write(png)

    upstream.post(EDIT_A, json=images_reply(1))
    client = app.test_client()
    with serve({"/cat.png": cat}) as srv:
        resp = client.post("/v1/images/image-to-image", headers=headers, json={
            "model": "gpt-image-2", "prompt": "a hat",
            "image": {"type": "url", "url": srv.url("/cat.png")}})
    assert resp.status_code == 202, resp.get_json()
    assert resp.get_json()["input"]["image"]["url"] == srv.url("/cat.png")
    from beatra.tasks.runtime import runtime_for

    runtime_for(app).join(30)
    _, files = _sent_form(upstream)
    assert [p.read() for p in files.getlist("image[]")] == [png]


def test_image_to_image_input_refusals(client, account, make_account):
    other = make_account(name="other")
    from beatra.storage.service import save_bytes

    with client.application.app_context():
        foreign = save_bytes(other.account_id, image_bytes(), purpose="media_input").id
    good = {"type": "data_uri", "data": data_uri(image_bytes())}
    cases = [
        ({"image": {"type": "data_uri", "data": "data:image/png;base64,!!!"}}, "/image/data"),
        ({"image": {"type": "artifact", "artifact_id": foreign}}, "/image/artifact_id"),
        ({"image": good, "extra_images": [{"type": "artifact", "artifact_id": foreign}]},
         "/extra_images/0/artifact_id"),
        ({"image": good, "extra_images": [good] * 16}, "/extra_images"),
        ({"image": {"type": "file", "data": "x"}}, "/image/type"),
        ({"image": {"type": "url"}}, "/image/url"),
        ({"image": {"type": "data_uri", "data": data_uri(b"just text", "text/plain")}},
         "/image/data"),
        ({}, "/image"),
    ]
    for body, param in cases:
        resp = client.post("/v1/images/image-to-image", headers=account.headers,
                           json={"model": "gpt-image-2", "prompt": "fox", **body})
        assert resp.status_code == 422, (param, resp.get_json())
        assert resp.get_json()["error"]["param"] == param
    assert balance(client, account) == Decimal("100")
    assert client.get("/v1/tasks", headers=account.headers).get_json()["data"] == []


def test_upstream_failure_fails_the_task_and_refunds(client, account, upstream, ledger_ok):
    upstream.post(GEN_A, body="", status=503)
    upstream.post(GEN_B, body=json.dumps({"error": {"message": "overloaded"}}), status=502)
    task = finished(client, account, submit(client, account)["task_id"])
    assert task["status"] == "failed"
    assert task["error"]["code"] == "upstream_error" and task["error"]["retryable"] is True
    assert task["output"] is None and task["usage"] is None
    held = Decimal(task["billing"]["reserved_credits"])
    assert task["billing"]["charged_credits"] == "0"
    assert Decimal(task["billing"]["refunded_credits"]) == held
    assert balance(client, account) == Decimal("100")
    assert ledger(client.application, task["task_id"]) == [("reserve", -held), ("refund", held)]
    assert len(upstream.calls) == 2


def test_a_failing_route_falls_over_to_the_next(client, account, upstream, ledger_ok):
    upstream.post(GEN_A, body=json.dumps({"error": {"message": "slow down"}}), status=429)
    upstream.post(GEN_B, json=images_reply(1))
    task = finished(client, account, submit(client, account)["task_id"])
    assert task["status"] == "succeeded"
    assert _sent_json(upstream, 1)["model"] == "up-image-b"


def test_content_policy_refusal_is_not_retryable(client, account, upstream, ledger_ok):
    upstream.add_callback(responses.POST, GEN_A, callback=lambda r: openai_error(
        400, "Your request was rejected by the safety system.", "moderation_blocked",
        "image_generation_user_error"))
    task = finished(client, account, submit(client, account)["task_id"])
    assert task["status"] == "failed"
    assert task["error"] == {"code": "content_policy_violation", "retryable": False,
                             "message": "Your request was rejected by the safety system."}
    assert len(upstream.calls) == 1  # another route would refuse it too
    assert balance(client, account) == Decimal("100")


def test_rejected_and_malformed_answers(client, account, upstream, ledger_ok):
    upstream.add_callback(responses.POST, GEN_A, callback=lambda r: openai_error(
        400, "Invalid size '3x3'.", "invalid_value"))
    rejected = finished(client, account, submit(client, account)["task_id"])
    assert (rejected["status"], rejected["error"]["code"]) == ("failed", "upstream_error")
    assert rejected["error"]["retryable"] is False

    upstream.replace(responses.POST, GEN_A, body="<html>oops</html>", status=200)
    upstream.post(GEN_B, json={"data": [{"b64_json": "not base64!"}]})
    malformed = finished(client, account, submit(client, account)["task_id"])
    assert (malformed["status"], malformed["error"]["code"]) == ("failed", "upstream_error")
    assert malformed["error"]["retryable"] is True
    assert balance(client, account) == Decimal("100")


def test_upstream_differences_and_missing_usage_are_warned(client, account, upstream,
                                                          ledger_ok):
    upstream.post(GEN_A, json=images_reply(1, size="1024x1024", fmt="webp", use=False))
    task = finished(client, account, submit(client, account, n=2, aspect_ratio="4:3")["task_id"])
    assert task["status"] == "succeeded"
    warned = {(w["code"], w["field"]) for w in task["warnings"]}
    assert warned == {("option_changed", "output_format"), ("option_changed", "aspect_ratio"),
                      ("option_changed", "n"), ("usage_estimated", None)}
    assert task["output"]["images"][0]["mime_type"] == "image/webp"
    # Estimated: ceil(9/4) text tokens + ceil(1056 x 64*48/1024^2) image tokens + 1 image.
    assert task["usage"]["credits"] == "0.5034"


def test_open_circuits_park_the_task_instead_of_failing_it(app, client, account, upstream,
                                                          monkeypatch, ledger_ok):
    from beatra.catalog.circuits import breaker
    from beatra.catalog.registry import current_catalog
    from tests.unit.tasks_helpers import get, hold_messages, run_step

    _, sent = hold_messages(app, monkeypatch)
    upstream.post(GEN_A, json=images_reply(1))
    task_id = submit(client, account)["task_id"]
    with app.app_context():
        routes = current_catalog().model("gpt-image-2").routes
    for route in routes:
        for i in range(breaker.threshold):
            breaker.failure(route, f"acct_{i}")
    try:
        run_step(app, task_id)
        parked = get(client, account, task_id)
        assert parked["status"] == "running"
        assert parked["progress"]["stage"] == "waiting_for_upstream"
        assert sent.sent[-1] == (task_id, 10.0)
    finally:
        breaker.reset()
    run_step(app, task_id)  # the delayed wake-up, circuits closed again
    assert get(client, account, task_id)["status"] == "succeeded"
    assert len(upstream.calls) == 1
