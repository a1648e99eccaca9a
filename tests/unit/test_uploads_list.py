"""GET /v1/uploads: the caller's uploads only, newest first, cursor paged."""

from __future__ import annotations

import io

from beatra.storage.service import save_bytes
from tests.unit.test_uploads import new_account


def _upload(client, account, text: str, purpose: str = "media_input") -> str:
    resp = client.post("/v1/uploads", headers=account.headers, data={
        "file": (io.BytesIO(text.encode()), "note.txt"), "purpose": purpose})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["artifact_id"]


def _list(client, account, **params):
    resp = client.get("/v1/uploads", headers=account.headers, query_string=params)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_pages_through_own_uploads_newest_first(app, client, account):
    mine = [_upload(client, account, f"mine {i}\n") for i in range(5)]
    other = new_account(app)
    theirs = _upload(client, other, "theirs\n")
    with app.app_context():  # task outputs are listed on their tasks, not here
        save_bytes(account.account_id, b"a task output\n")

    seen, cursor, pages = [], None, 0
    while True:
        page = _list(client, account, limit=2, **({"cursor": cursor} if cursor else {}))
        pages += 1
        assert page["object"] == "list"
        assert len(page["data"]) <= 2
        seen += [item["artifact_id"] for item in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert seen == list(reversed(mine))
    assert pages == 3
    assert theirs not in seen
    assert [i["artifact_id"] for i in _list(client, other)["data"]] == [theirs]


def test_items_are_upload_responses_with_signed_urls(client, account):
    artifact_id = _upload(client, account, "hello\n")
    item = _list(client, account)["data"][0]
    assert item["artifact_id"] == artifact_id
    assert item["object"] == "upload" and item["media_type"] == "text"
    assert item["size_bytes"] == 6
    content = client.get(item["cdn_url"].removeprefix("http://beatra.test"))
    assert content.status_code == 200 and content.get_data() == b"hello\n"


def test_purpose_filter(client, account):
    _upload(client, account, "input\n")
    ref = _upload(client, account, "reference\n", purpose="reference_audio")
    listed = _list(client, account, purpose="reference_audio")["data"]
    assert [i["artifact_id"] for i in listed] == [ref]


def test_bad_cursor_limit_and_purpose_are_422(client, account):
    for params, param in (({"cursor": "garbage"}, "/cursor"), ({"limit": 0}, "/limit"),
                          ({"limit": 101}, "/limit"), ({"purpose": "task_output"}, "/purpose")):
        resp = client.get("/v1/uploads", headers=account.headers, query_string=params)
        assert resp.status_code == 422, params
        assert resp.get_json()["error"]["param"] == param


def test_needs_a_key(client):
    assert client.get("/v1/uploads").status_code == 401


def test_documented_in_the_served_openapi(client):
    op = client.get("/openapi.json").get_json()["paths"]["/v1/uploads"]["get"]
    assert op["operationId"] == "list_uploads_v1_uploads_get"
    assert {p["name"] for p in op["parameters"]} >= {"limit", "cursor", "purpose"}
    assert "200" in op["responses"] and "401" in op["responses"]
