"""/openai/v1: OpenAI's synchronous Images API on beatra's image tasks (Flask test client, upstream
mocked), plus chat/completions and models served again under the same base path."""

from __future__ import annotations

import base64
import io
import json
import threading
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import responses
from PIL import Image

from tests.unit.tasks_helpers import (
    EDIT_A,
    FAST,
    GEN_A,
    balance,
    image_bytes,
    images_reply,
    ledger,
    usage,
)

GEN = "/openai/v1/images/generations"
EDIT = "/openai/v1/images/edits"


@pytest.fixture
def app(make_app):
    return make_app(**FAST)


@pytest.fixture
def upstream():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru("http://127.0.0.1")
        yield mock


def _content(client, url: str) -> bytes:
    parts = urlsplit(url)
    resp = client.get(f"{parts.path}?{parts.query}")
    assert resp.status_code == 200
    return resp.data


def test_generate_waits_and_answers_an_images_response(client, account, upstream, ledger_ok):
    upstream.post(GEN_A, json=images_reply(2, size="1024x1024", use=usage(text_in=5,
                                                                           image_out=2000)))
    before = balance(client, account)
    resp = client.post(GEN, headers=account.headers, json={
        "model": "gpt-image-2", "prompt": "a red fox", "n": 2, "size": "1024x1024"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert [sorted(item) for item in body["data"]] == [["url"], ["url"]]
    assert Image.open(io.BytesIO(_content(client, body["data"][0]["url"]))).format == "PNG"
    assert body["usage"]["input_tokens"] == 5 and body["usage"]["output_tokens"] == 2000
    assert body["usage"]["total_tokens"] == 2005
    task_id = body["beatra"]["task_id"]
    charged = Decimal(body["usage"]["credits"])
    assert charged > 0 and body["beatra"]["charged_credits"] == body["usage"]["credits"]
    assert balance(client, account) == before - charged
    task = client.get(f"/v1/tasks/{task_id}", headers=account.headers).get_json()
    assert task["status"] == "succeeded" and task["capability"] == "images.generations"
    assert body["beatra"]["warnings"] == []


def test_b64_json_and_size_mapping(client, account, upstream, ledger_ok):
    upstream.post(GEN_A, json=images_reply(1, fmt="webp"))
    resp = client.post(GEN, headers=account.headers, json={
        "prompt": "a boat", "response_format": "b64_json", "size": "1536x1024",
        "output_format": "webp", "quality": "high"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"]))).format == "WEBP"
    assert "url" not in body["data"][0]
    sent = upstream.calls[0].request.body
    assert b'"size": "1536x1152"' in sent or b'"size":"1536x1152"' in sent  # nearest: 4:3
    assert b'"high"' in sent
    assert [w["code"] for w in body["beatra"]["warnings"]][:2] == ["size_mapped",
                                                                    "auto_routed"]


def test_edit_with_two_images_sends_both(client, account, upstream, ledger_ok):
    upstream.post(EDIT_A, json=images_reply(1, use=usage(8, 2 * 323, 1056)))
    files = [(io.BytesIO(image_bytes(40, 40, color=(i, 2, 3))), f"in{i}.png") for i in (1, 2)]
    resp = client.post(EDIT, headers=account.headers, content_type="multipart/form-data",
                       data={"image[]": files, "prompt": "merge them", "model": "gpt-image-2",
                             "n": "1"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["usage"]["input_tokens_details"]["image_tokens"] == 2 * 323
    task = client.get(f"/v1/tasks/{body['beatra']['task_id']}", headers=account.headers)
    task = task.get_json()
    assert task["capability"] == "images.image_to_image"
    assert len(task["input"]["extra_images"]) == 1
    assert upstream.calls[0].request.body.count(b'name="image[]"') == 2


@pytest.mark.parametrize(("data", "param"), [
    ({"prompt": "x"}, "/image"),
    ({"prompt": "x", "image": [(io.BytesIO(b"GIF89a nope"), "a.gif")]}, "/image/0"),
    ({"prompt": "x", "mask": (io.BytesIO(image_bytes()), "m.png"),
      "image": [(io.BytesIO(image_bytes()), "a.png")]}, "/mask"),
])
def test_edit_refusals_are_422(client, account, data, param):
    resp = client.post(EDIT, headers=account.headers, content_type="multipart/form-data",
                       data=data)
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["param"] == param


@pytest.mark.parametrize(("extra", "param"), [
    ({"quality": "low"}, "/quality"),
    ({"size": "big"}, "/size"),
    ({"stream": True}, "/stream"),
    ({"background": "transparent"}, "/background"),
    ({"n": 5}, "/n"),
    ({"colour": "red"}, "/colour"),
])
def test_parameters_beatra_cannot_honour_are_422(client, account, extra, param):
    resp = client.post(GEN, headers=account.headers, json={"prompt": "x", **extra})
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["param"] == param
    assert client.get("/v1/tasks", headers=account.headers).get_json()["data"] == []


def test_insufficient_balance_is_402_and_queues_nothing(client, make_account, upstream):
    poor = make_account("0.01")
    resp = client.post(GEN, headers={**poor.headers, "Idempotency-Key": "k402"},
                       json={"prompt": "a fox"})
    assert resp.status_code == 402
    assert resp.get_json()["error"]["code"] == "insufficient_balance"
    assert client.get("/v1/tasks", headers=poor.headers).get_json()["data"] == []
    assert not upstream.calls


def test_failed_task_is_an_error_naming_it(client, account, upstream, ledger_ok):
    upstream.post(GEN_A, json={"error": {"message": "Your request was rejected",
                                         "code": "moderation_blocked"}}, status=400)
    resp = client.post(GEN, headers=account.headers, json={"prompt": "x [policy]"})
    err = resp.get_json()["error"]
    assert (resp.status_code, err["code"]) == (400, "content_policy_violation"), err
    assert err["details"]["task_id"].startswith("task_")
    assert resp.headers["x-should-retry"] == "false"


def test_timeout_names_the_task_and_a_keyed_retry_gets_the_same_images(
        make_app, make_account, upstream, ledger_ok):
    app = make_app(**FAST, OPENAI_WAIT_SECONDS=0.5)
    client = app.test_client()
    account = make_account()
    release = threading.Event()

    def slow(_request):
        release.wait(30)
        return 200, {}, json.dumps(images_reply(1))

    upstream.add_callback(responses.POST, GEN_A, callback=slow)
    headers = {**account.headers, "Idempotency-Key": "retry-1"}
    first = client.post(GEN, headers=headers, json={"prompt": "a slow fox"})
    assert first.status_code == 504, first.get_json()
    err = first.get_json()["error"]
    assert err["code"] == "task_pending" and err["retryable"] is True
    task_id = err["details"]["task_id"]
    assert task_id in err["message"] and f"/v1/tasks/{task_id}" in err["message"]
    assert first.headers["x-should-retry"] == "true"

    # Without a key the SDK is told not to retry (a retry would queue and charge again).
    unkeyed = client.post(GEN, headers={**account.headers, "X-Stainless-Timeout": "1"},
                          json={"prompt": "another slow fox"})
    assert unkeyed.status_code == 504
    assert unkeyed.headers["x-should-retry"] == "false"

    release.set()
    second = client.post(GEN, headers=headers, json={"prompt": "a slow fox"})
    third = client.post(GEN, headers=headers, json={"prompt": "a slow fox"})
    assert second.status_code == third.status_code == 200, second.get_json()
    assert second.get_json()["beatra"]["task_id"] == task_id
    assert second.headers["Idempotent-Replayed"] == "true"
    assert third.get_json()["beatra"]["task_id"] == task_id
    kinds = [kind for kind, _ in ledger(app, task_id)]
    assert kinds.count("capture") == 1 and kinds.count("reserve") == 1, kinds

    reused = client.post(GEN, headers=headers, json={"prompt": "a different fox"})
    assert reused.status_code == 422
    assert reused.get_json()["error"]["code"] == "idempotency_key_reused"


def test_wait_budget_follows_the_sdk_timeout_headers(app):
    from beatra.api.openai_compat.waiting import wait_budget

    for headers, want in [({}, 120.0), ({"X-Stainless-Read-Timeout": "600.0"}, 120.0),
                          ({"X-Stainless-Timeout": "10"}, 8.0),
                          ({"X-Stainless-Timeout": "3"}, 1.5),
                          ({"X-Stainless-Timeout": "nan"}, 120.0)]:
        with app.test_request_context(GEN, headers=headers):
            assert wait_budget() == want, headers


def test_chat_and_models_are_served_under_the_same_base(client, account):
    ours = client.get("/openai/v1/models", headers=account.headers)
    contract = client.get("/v1/models", headers=account.headers)
    assert ours.status_code == 200 and ours.get_json() == contract.get_json()
    assert client.get("/openai/v1/models").status_code == 401
    bad = client.post("/openai/v1/chat/completions", headers=account.headers, json={})
    assert bad.status_code == 422 and bad.get_json()["error"]["param"] == "/model"
