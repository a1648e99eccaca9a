"""Operator endpoints and hooks: /readyz, /metrics (single process here; the multiprocess sum is
tested end to end), the access line of a streamed response, de-duplication after a store
switch."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from flask import Response, stream_with_context
from prometheus_client.parser import text_string_to_metric_families

from beatra.accesslog import access_fields
from beatra.extensions import db
from beatra.sandbox.media import image_bytes
from beatra.storage.service import STORE_KEY
from beatra.storage.stores import FileStore


def scrape(client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_readyz_reports_each_check(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ready", "checks": {
        "database": "ok", "redis": "not_used", "storage": "ok"}}
    assert resp.headers["X-Request-Id"]


def test_readyz_names_the_failing_check(make_app, tmp_path: Path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's directory should be")
    client = make_app(storage_url=f"file://{blocker}/artifacts").test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 503
    err = resp.get_json()["error"]
    assert err["code"] == "service_unavailable" and err["retryable"] is True
    assert "storage" in err["message"]
    checks = err["details"]["checks"]
    assert checks["database"] == "ok" and checks["storage"].startswith("error:")
    assert resp.headers["Retry-After"]
    # /v1/health stays the contract's static self-check
    assert client.get("/v1/health").get_json() == {"status": "ok", "version": "0.1.0"}


def test_readyz_and_metrics_are_not_in_the_served_document(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "/readyz" not in paths and "/metrics" not in paths


def test_metrics_count_requests_by_route_template(client, account):
    key = ("beatra_http_requests_total",
           (("method", "GET"), ("route", "/v1/tasks/<id:task_id>"), ("status", "404")))
    before = scrape(client).get(key, 0)
    for _ in range(3):
        assert client.get("/v1/tasks/task_nope", headers=account.headers).status_code == 404
    after = scrape(client)
    assert after[key] == before + 3
    assert after[("beatra_http_request_duration_seconds_count",
                  (("route", "/v1/tasks/<id:task_id>"),))] >= 3
    # state gauges read at scrape time
    assert after[("beatra_queue_depth", (("queue", "beatra-tasks"),))] == 0
    assert ("beatra_queue_depth", (("queue", "beatra-webhooks"),)) in after


def test_metrics_token(make_app):
    client = make_app(metrics_token="s3cret").test_client()
    denied = client.get("/metrics")
    assert denied.status_code == 401
    assert denied.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scrape(client, Authorization="Bearer s3cret")


def test_open_holds_gauge_counts_open_holds(app, client):
    from decimal import Decimal

    from beatra.accounts import service
    from beatra.billing import wallet

    assert scrape(client)[("beatra_holds_open", ())] == 0
    with app.app_context():
        acct = service.create_account("h", Decimal("10"))
        first = wallet.reserve(acct.id, Decimal("1"))
        wallet.reserve(acct.id, Decimal("2"))
        wallet.settle(first, Decimal("0.5"))
    assert scrape(client)[("beatra_holds_open", ())] == 1


def test_streamed_access_line_is_written_when_the_stream_ends(app, account, caplog,
                                                             monkeypatch):
    """The generic hook the chat relay fills: access_fields() → outcome and credits."""
    # Alembic's fileConfig (the migrated template database) disables loggers existing then.
    monkeypatch.setattr(logging.getLogger("beatra.access"), "disabled", False)
    chunks_sent: list[str] = []

    def stream_view() -> Response:
        def body():
            for i in range(3):
                chunks_sent.append(str(i))
                yield f"data: {i}\n\n"
            access_fields().update(outcome="completed", credits="0.0042")

        return Response(stream_with_context(body()), mimetype="text/event-stream")

    app.add_url_rule("/v1/_test_stream", "test_stream", stream_view)
    client = app.test_client()
    caplog.set_level(logging.INFO, logger="beatra.access")
    active = ("beatra_streams_active", ())
    before = scrape(client)[active]
    resp = client.get("/v1/_test_stream", headers=account.headers, buffered=False)
    assert resp.status_code == 200
    assert scrape(client)[active] == before + 1
    assert not [r for r in caplog.records if r.name == "beatra.access"
                and r.fields["route"] == "/v1/_test_stream"]  # not when the headers went out
    assert b"".join(resp.response) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    resp.close()
    assert scrape(client)[active] == before
    lines = [r.fields for r in caplog.records
             if r.name == "beatra.access" and r.fields["route"] == "/v1/_test_stream"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["route"], line["status"], line["streamed"]) == ("/v1/_test_stream", 200, True)
    assert (line["outcome"], line["credits"]) == ("completed", "0.0042")
    assert line["duration_ms"] >= 0 and line["request_id"] == resp.headers["X-Request-Id"]


def test_duplicate_upload_after_a_store_switch_is_stored_again(app, client, account,
                                                               tmp_path: Path):
    png = image_bytes(9, 7, "png")

    def upload():
        return client.post("/v1/uploads", headers=account.headers,
                           data={"file": (io.BytesIO(png), "a.png")})

    first = upload()
    assert first.status_code == 201
    # the operator points BEATRA_STORAGE_URL somewhere new (the database keeps its rows)
    new_root = tmp_path / "new-store"
    app.extensions[STORE_KEY] = FileStore(new_root)
    again = upload()
    assert again.status_code == 200
    assert again.get_json()["artifact_id"] == first.get_json()["artifact_id"]
    stored = [p for p in new_root.rglob("*") if p.is_file() and ".staging" not in p.parts]
    assert [p.read_bytes() for p in stored] == [png]
    content = client.get(again.get_json()["cdn_url"].removeprefix("http://beatra.test"))
    assert content.status_code == 200 and content.data == png


@pytest.fixture(autouse=True)
def _no_cached_readiness(app):
    app.extensions.pop("beatra.ready", None)


def test_outage_errors_are_503_and_bugs_stay_500(app, account):
    """A dead connection (OperationalError), a session reused after one (PendingRollbackError
    chained to it) and Redis being down are outages; a schema bug reported the same way by
    SQLite and a PendingRollbackError after a non-outage error stay 500."""
    import redis
    from sqlalchemy.exc import OperationalError, PendingRollbackError

    def dead() -> None:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    def reused_after_dead() -> None:
        try:
            dead()
        except OperationalError:
            raise PendingRollbackError("Can't reconnect until invalid transaction is rolled "
                                       "back", None, None) from None

    def reused_after_bug() -> None:
        try:
            raise ValueError("a bug")
        except ValueError:
            raise PendingRollbackError("rolled back", None, None) from None

    def schema_bug() -> None:
        raise OperationalError("SELECT x", {}, Exception("no such table: nope"))

    def redis_down() -> None:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    expected = {dead: 503, reused_after_dead: 503, redis_down: 503, schema_bug: 500,
                reused_after_bug: 500}
    for view in expected:
        app.add_url_rule(f"/v1/_test_{view.__name__}", view.__name__, view)
    client = app.test_client()
    for view, status in expected.items():
        resp = client.get(f"/v1/_test_{view.__name__}", headers=account.headers)
        assert resp.status_code == status, view.__name__
        err = resp.get_json()["error"]
        if status == 503:
            assert err["code"] == "service_unavailable" and err["retryable"] is True
            assert resp.headers["Retry-After"] == "2"
        else:
            assert err["code"] == "internal_error"


def test_a_session_teardown_over_a_lost_connection_does_not_turn_into_a_500(
        app, client, account, monkeypatch):
    """Flask-SQLAlchemy's session.remove() at teardown ROLLBACKs; over a connection that died
    mid-request that raises after the response was made (gunicorn would answer 500)."""
    from sqlalchemy.exc import OperationalError

    real_remove = db.session.remove
    calls = []

    def remove_over_dead_connection() -> None:
        calls.append(1)
        real_remove()
        raise OperationalError("ROLLBACK", {}, Exception("terminating connection due to "
                                                         "administrator command"))

    monkeypatch.setattr(db.session, "remove", remove_over_dead_connection)
    resp = client.get("/v1/tasks", headers=account.headers)
    assert resp.status_code == 200 and calls
    assert client.get("/v1/tasks", headers=account.headers).status_code == 200
