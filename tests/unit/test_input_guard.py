"""Issue 11: every bad input gets a clear 4xx envelope and changes nothing (no task, artifact,
hold or ledger row). One test per observed case."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from beatra.api.input_guard import MAX_JSON_DEPTH
from beatra.api.strict import MAX_OUTPUT_TOKENS
from beatra.billing.models import LedgerEntry
from beatra.extensions import db
from beatra.storage.models import Artifact
from beatra.tasks.models import Task
from beatra.webhooks.models import WebhookDelivery
from tests.unit.tasks_helpers import IMAGES_CATALOG

CHAT = "/v1/chat/completions"
IMAGES = "/v1/images/generations"
MUSIC = "/v1/music/text-to-music"
GOOD_CHAT = '{"model": "test-chat", "messages": [{"role": "user", "content": "hi"}]'


def _rows(app) -> tuple[int, ...]:
    with app.app_context():
        counts = tuple(db.session.scalar(select(func.count()).select_from(m))
                       for m in (Task, Artifact, LedgerEntry, WebhookDelivery))
        db.session.remove()
        return counts


@pytest.fixture
def unchanged(app) -> Callable[[], None]:
    before = _rows(app)

    def check() -> None:
        assert _rows(app) == before, "a refused request changed stored state"

    return check


def _post_raw(client, account, path: str, body: bytes | str,
              content_type: str = "application/json"):
    return client.post(path, data=body, headers={**account.headers,
                                                 "Content-Type": content_type})


def _error(resp, status: int = 422) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    err = resp.get_json()["error"]
    assert resp.headers["X-Request-Id"] == err["request_id"]
    return err


# --- 500s that were observed -------------------------------------------------------------

@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 10_000])
@pytest.mark.parametrize("path", [CHAT, IMAGES])
def test_deeply_nested_json_is_422(client, account, unchanged, path, depth):
    body = '{"model": "test-chat", "x": ' + "[" * depth + "]" * depth + "}"
    err = _error(_post_raw(client, account, path, body))
    assert err["code"] == "invalid_request"
    assert "nested too deeply" in err["message"]
    unchanged()


def test_huge_numbers_anywhere_are_422(client, account, unchanged):
    body = GOOD_CHAT + ', "extra": {"n": [1, ' + "9" * 30 + "]}}"
    err = _error(_post_raw(client, account, CHAT, body))
    assert err["param"] == "/extra/n/1" and "out of range" in err["message"]
    unchanged()


def test_nesting_within_the_limit_is_accepted_by_the_guard(client, account):
    nested = "[" * (MAX_JSON_DEPTH - 2) + "]" * (MAX_JSON_DEPTH - 2)
    body = GOOD_CHAT + ', "metadata": ' + nested + "}"
    err = _error(_post_raw(client, account, CHAT, body))
    assert err["param"] == "/metadata"  # the schema, not the guard, answered


@pytest.mark.parametrize(("path", "body"), [
    (CHAT, '{"model": "test-chat", "messages": [{"role": "user", "content": "\\ud800x"}]}'),
    (CHAT, '{"model": "\\ud800x", "messages": [{"role": "user", "content": "hi"}]}'),
    (IMAGES, '{"model": "gpt-image-2", "prompt": "a fox \\udc00"}'),
    (MUSIC, '{"model": "minimax-music-2.6", "prompt": "\\udc00"}'),
])
def test_unpaired_surrogate_escapes_are_422(client, account, unchanged, path, body):
    err = _error(_post_raw(client, account, path, body))
    assert "surrogate" in err["message"]
    unchanged()


def test_raw_surrogate_bytes_are_422(client, account, unchanged):
    body = b'{"model": "test-chat", "messages": [{"role": "user", "content": "\xed\xa0\x80"}]}'
    err = _error(_post_raw(client, account, CHAT, body))
    assert "surrogate" in err["message"]
    unchanged()


def test_surrogate_in_a_header_value_is_422(client, account, unchanged):
    # WSGI carries headers as latin-1 text, so only a misbehaving server or test client can
    # produce this; the guard refuses it rather than letting a logger choke on it.
    resp = client.post(CHAT, data=GOOD_CHAT + "}", headers=account.headers,
                       content_type="application/json",
                       environ_overrides={"HTTP_X_NOTE": "a\udc00"})
    err = _error(resp)
    assert err["param"] == "/X-Note"
    unchanged()


@pytest.mark.parametrize(("value", "fragment"), [
    ("1" + "0" * 18, f"between 1 and {MAX_OUTPUT_TOKENS}"),  # 10^18
    (str(2**63), "out of range"),
    (str(2**64 + 1), "out of range"),  # orjson reads it as a float; still refused
    ("1" + "0" * 25, "out of range"),  # 10^25
    ("9" * 5001, "too large"),
    (str(MAX_OUTPUT_TOKENS + 1), f"between 1 and {MAX_OUTPUT_TOKENS}"),
])
def test_out_of_range_token_counts_are_422(client, account, unchanged, value, fragment):
    body = GOOD_CHAT + f', "max_tokens": {value}}}'
    err = _error(_post_raw(client, account, CHAT, body))
    assert fragment in err["message"]
    assert err["param"] in ("/max_tokens", None)
    if "too large" not in fragment:  # orjson cannot place a number it refused to parse
        assert err["param"] == "/max_tokens"
    unchanged()


# --- accepted against the contract -------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("max_tokens", 1.5),
    ("max_tokens", 10.0),
    ("max_completion_tokens", "100"),
    ("max_tokens", True),
    ("stream", "yes"),
    ("stream", 1),
    ("temperature", "0.5"),
    ("logprobs", "true"),
    ("n", "2"),
])
def test_wrong_json_types_are_not_coerced(client, account, unchanged, field, value):
    body = {"model": "test-chat", "messages": [{"role": "user", "content": "hi"}], field: value}
    err = _error(client.post(CHAT, json=body, headers=account.headers))
    assert err["param"] == f"/{field}"
    unchanged()


@pytest.mark.parametrize("body", [{"instrumental": "yes"}])
def test_music_booleans_are_strict(client, account, unchanged, body):
    payload = {"model": "minimax-music-2.6", "prompt": "jazz", **body}
    err = _error(client.post(MUSIC, json=payload, headers=account.headers))
    assert err["param"] == "/instrumental"
    unchanged()


@pytest.mark.parametrize("query", ["status=", "status=&status=queued", "order=",
                                   "capability="])
def test_empty_enum_query_values_are_422(client, account, query):
    err = _error(client.get(f"/v1/tasks?{query}", headers=account.headers))
    assert err["param"] == "/" + query.split("=")[0]


# --- unhelpful errors --------------------------------------------------------------------

@pytest.mark.parametrize("body", ["{bad", '{"model": "test-chat",}', "[1, 2", "nul"])
def test_malformed_json_names_the_problem(client, account, unchanged, body):
    err = _error(_post_raw(client, account, CHAT, body))
    assert err["message"].startswith("Request body is not valid JSON:")
    assert "browser" not in err["message"]
    assert "line 1" in err["message"]
    unchanged()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/octet-stream"])
def test_json_body_with_the_wrong_content_type_is_415(client, account, unchanged,
                                                      content_type):
    err = _error(_post_raw(client, account, CHAT, GOOD_CHAT + "}", content_type), 415)
    assert err["code"] == "unsupported_media_type"
    assert "application/json" in err["message"] and content_type in err["message"]
    assert "Missing data" not in err["message"]
    unchanged()


def test_valid_json_variants_still_pass_the_guard(client, account):
    # +json media types and a charset parameter are JSON too; the schema answers (bad model).
    for ctype in ("application/json; charset=utf-8", "application/vnd.api+json"):
        body = '{"model": "no-such", "messages": [{"role": "user", "content": "hi"}]}'
        err = _error(_post_raw(client, account, CHAT, body, ctype))
        assert err["param"] == "/model"


# --- one body-size rule --------------------------------------------------------------------

def test_body_size_limits_come_from_settings_per_endpoint(make_app, make_account):
    app = make_app(max_json_body_bytes=2048, upload_max_bytes=4096,
                   catalog_path=str(IMAGES_CATALOG))
    client = app.test_client()
    account = make_account()
    big = GOOD_CHAT + ', "user": "' + "x" * 3000 + '"}'
    err = _error(_post_raw(client, account, CHAT, big), 413)
    assert err["code"] == "payload_too_large" and "2048" in err["message"]
    # The upload cap is the setting plus multipart framing, not a hard-coded 100 MB.
    from beatra.api.uploads.routes import MULTIPART_OVERHEAD

    cap = 4096 + MULTIPART_OVERHEAD
    resp = client.post("/v1/uploads", data=b"x" * (cap + 1), headers={
        **account.headers, "Content-Type": "multipart/form-data; boundary=x"})
    err = _error(resp, 413)
    assert str(cap) in err["message"]


def test_a_stranger_cannot_make_the_guard_parse_a_body(client):
    # Size and headers are checked before auth; the body only once the caller is known.
    body = '{"m": ' + "[" * 10_000 + "]" * 10_000 + "}"
    resp = client.post(CHAT, data=body, content_type="application/json")
    assert resp.status_code == 401
