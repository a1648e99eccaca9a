"""Cross-cutting HTTP behaviour: auth, request ids, the error envelope from every layer."""

from __future__ import annotations

import pytest

from tests.conftest import ApiAccount


def assert_envelope(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    err = body["error"]
    assert err["code"] == code
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["retryable"], bool)
    assert err["request_id"] == resp.headers["X-Request-Id"]
    assert "param" in err and "details" in err
    return err


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer nonsense", "Bearer btr_short_x",
     "Bearer btr_000000000000_wrongsecret"],
)
def test_missing_malformed_or_unknown_key_is_401(client, header):
    headers = {"Authorization": header} if header is not None else {}
    assert_envelope(client.get("/v1/models", headers=headers), 401, "unauthorized")


def test_wrong_secret_for_real_prefix_is_401(client, account: ApiAccount):
    tampered = account.api_key[:-4] + ("AAAA" if not account.api_key.endswith("AAAA") else "BBBB")
    resp = client.get("/v1/models", headers={"Authorization": f"Bearer {tampered}"})
    assert_envelope(resp, 401, "unauthorized")


def test_valid_key_then_revoked_key(client, runner, account: ApiAccount):
    assert client.get("/v1/models", headers=account.headers).status_code == 200
    result = runner.invoke(args=["keys", "revoke", account.key_id])
    assert result.exit_code == 0, result.output
    assert_envelope(client.get("/v1/models", headers=account.headers), 401, "unauthorized")


def test_bearer_scheme_is_case_insensitive(client, account: ApiAccount):
    resp = client.get("/v1/models", headers={"Authorization": f"bearer {account.api_key}"})
    assert resp.status_code == 200


def test_health_is_public(client):
    resp = client.get("/v1/health")
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "ok"
    assert resp.headers["X-Request-Id"].startswith("req_")


def test_request_id_echoed_when_sane(client, account: ApiAccount):
    resp = client.get("/v1/models", headers={**account.headers, "X-Request-Id": "my-id-123"})
    assert resp.headers["X-Request-Id"] == "my-id-123"
    err = assert_envelope(client.get("/v1/nope", headers={"X-Request-Id": "e-1"}), 404,
                          "not_found")
    assert err["request_id"] == "e-1"


@pytest.mark.parametrize("bad", ["x" * 129, "tab\there"])
def test_insane_request_id_is_replaced(client, bad):
    resp = client.get("/v1/health", headers={"X-Request-Id": bad})
    assert resp.headers["X-Request-Id"].startswith("req_")


def test_generated_request_ids_are_unique(client):
    ids = {client.get("/v1/health").headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5


def test_unknown_route_404_envelope(client):
    assert_envelope(client.get("/v2/whatever"), 404, "not_found")


def test_wrong_method_405_envelope(client, account: ApiAccount):
    resp = client.delete("/v1/models", headers=account.headers)
    assert_envelope(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


def test_oversized_body_413_envelope(app, client, account: ApiAccount):
    limit = app.config["MAX_CONTENT_LENGTH"]
    resp = client.post("/v1/models", data=b"x" * (limit + 1), headers=account.headers,
                       content_type="application/json")
    assert_envelope(resp, 413, "payload_too_large")


def test_unhandled_exception_is_500_without_stack_trace(make_app, make_account):
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    def boom():
        raise RuntimeError("secret internals at /srv/beatra/x.py line 3")

    app.add_url_rule("/v1/boom", "boom", boom)
    account = make_account()
    resp = app.test_client().get("/v1/boom", headers=account.headers)
    err = assert_envelope(resp, 500, "internal_error")
    text = resp.get_data(as_text=True)
    assert "secret internals" not in text and "Traceback" not in text
    assert err["retryable"] is True


def test_query_validation_422_has_param_pointer(client, account: ApiAccount):
    # flask-smorest query validation is exercised for real by task listing later; here we use
    # the error translator directly on a webargs-shaped message.
    from beatra.errors import validation_error

    err = validation_error({"json": {"messages": {0: {"content": ["Field may not be null."]}}}})
    assert err.status == 422 and err.param == "/messages/0/content"
    err = validation_error({"query": {"limit": ["Must be between 1 and 100."]}})
    assert err.param == "/limit" and "query parameter 'limit'" in err.message
