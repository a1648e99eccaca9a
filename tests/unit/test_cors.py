"""CORS: preflights from allowed origins skip auth; other origins get no CORS headers."""

from __future__ import annotations

import pytest

ALLOWED = "https://console.example"
REFUSED = "https://evil.example"


@pytest.fixture
def cors_client(make_app):
    return make_app(cors_origins=(ALLOWED, "http://127.0.0.1:5173")).test_client()


def preflight(client, origin: str, path: str = "/v1/chat/completions"):
    return client.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})


def test_preflight_from_an_allowed_origin_is_answered_without_a_key(cors_client):
    resp = preflight(cors_client, ALLOWED)
    assert resp.status_code == 204
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "idempotency-key", "x-request-id", "content-type"} <= allowed
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "Origin" in resp.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in resp.headers


def test_preflight_from_a_refused_origin_gets_no_cors_headers(cors_client):
    resp = preflight(cors_client, REFUSED)
    assert resp.status_code == 401  # treated like any unauthenticated request
    assert resp.get_json()["error"]["code"] == "unauthorized"
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_actual_requests_expose_request_id_and_rate_limit_headers(cors_client, make_account):
    account = make_account()
    resp = cors_client.get("/v1/models", headers={**account.headers, "Origin": ALLOWED})
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining",
            "X-RateLimit-Reset", "Retry-After"} <= exposed
    # Errors carry the headers too, so the browser can read the envelope.
    denied = cors_client.get("/v1/models", headers={"Origin": ALLOWED})
    assert denied.status_code == 401 and denied.headers["Access-Control-Allow-Origin"] == ALLOWED
    other = cors_client.get("/v1/models", headers={**account.headers, "Origin": REFUSED})
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers


def test_cors_is_off_by_default(client):
    resp = preflight(client, ALLOWED)
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert resp.status_code == 401


def test_origins_come_from_the_environment(monkeypatch):
    from beatra.config import Settings

    monkeypatch.setenv("BEATRA_CORS_ORIGINS", " https://a.example/, ,http://127.0.0.1:5173")
    assert Settings.from_env().cors_origins == ("https://a.example", "http://127.0.0.1:5173")
    monkeypatch.delenv("BEATRA_CORS_ORIGINS")
    assert Settings.from_env().cors_origins == ()
