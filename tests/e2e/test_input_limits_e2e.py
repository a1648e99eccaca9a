"""Bad input against the real gunicorn (gevent worker): what gunicorn refuses itself (414, 431,
400) and what the app's input guard refuses all answer the JSON error envelope, and the gateway
log has no `unhandled error` line afterwards."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import orjson
import pytest
import requests

from tests.e2e.stack import Stack, chat_stack

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    yield from chat_stack(tmp_path_factory, "input-e2e")


def _raw(stack: Stack, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def _envelope(headers: dict[str, str], body: bytes) -> dict:
    assert headers["Content-Type"] == "application/json"
    err = orjson.loads(body)["error"]
    assert set(err) == {"code", "message", "retryable", "request_id", "param", "details"}
    assert err["request_id"] == headers["X-Request-Id"]
    return err


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"GET /v1/health?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    (b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431,
     "headers_too_large"),
    (b"GET /v1/health HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431, "headers_too_large"),
    (b"NOT A REQUEST\r\n\r\n", 400, "invalid_request"),
])
def test_errors_gunicorn_answers_carry_the_envelope(stack, request_bytes, status, code):
    got, headers, body = _raw(stack, request_bytes)
    assert got == status, body[:300]
    err = _envelope(headers, body)
    assert err["code"] == code and err["retryable"] is False


def test_guard_refusals_through_gunicorn(stack):
    _, key = stack.create_account("10")
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    url = f"{stack.url}/v1/chat/completions"
    cases = [
        (b'{"model": "x", "m": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", 422),
        (b'{"model": "\\ud800x", "messages": [{"role": "user", "content": "hi"}]}', 422),
        (b'{"model": "x", "messages": [], "max_tokens": ' + b"9" * 5001 + b"}", 422),
        (b"{bad", 422),
    ]
    for body, status in cases:
        resp = requests.post(url, data=body, headers=auth, timeout=30)
        assert resp.status_code == status, resp.text[:300]
        assert resp.json()["error"]["code"] == "invalid_request"
    resp = requests.post(url, data=b'{"model": "x"}', timeout=30,
                         headers={**auth, "Content-Type": "text/plain"})
    assert resp.status_code == 415 and "application/json" in resp.json()["error"]["message"]
    log = (stack.dir / "gateway.log").read_text()
    assert "unhandled error" not in log
