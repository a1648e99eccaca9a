"""Zero-downtime reload: `kill -HUP` the gunicorn master while a stream is in flight and new
connections keep arriving. New workers start, the old ones stop accepting and drain: the
stream finishes whole and no connection is refused or answered 5xx.

Graceful stop: `kill -TERM` ends the service as soon as the requests in flight are done; an
idle keep-alive connection does not hold it for the graceful timeout."""

from __future__ import annotations

import http.client
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.procs import children, wait_until
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


def _stream_in_flight(stack: Stack, headers: dict[str, str], chunks: int) -> Iterator[bytes]:
    """A sandbox chat stream of `chunks` chunks 0.5 s apart, accepted (200); its body parts."""
    stream = requests.post(
        f"{stack.url}/v1/chat/completions", stream=True, timeout=60, headers=headers,
        json={"model": "gpt-4o-mini", "stream": True, "messages": [
            {"role": "user", "content": f"[sandbox:chunks={chunks},chunk_delay=0.5] hi"}]})
    assert stream.status_code == 200
    return stream.iter_content(None)


def test_hup_reload_keeps_streams_and_new_connections(tmp_path: Path) -> None:
    stack = Stack(tmp_path, env={"BEATRA_LOG_LEVEL": "INFO"})
    stack.flask("db", "upgrade")  # the Procfile's release line, through the real CLI
    stack.start_sandbox()
    stack.start_gateway(workers=2)
    try:
        _, key = stack.create_account("100")
        headers = {"Authorization": f"Bearer {key}"}
        master = stack.procs["gateway"].pid
        old_workers = set(children(master))
        assert len(old_workers) == 2

        parts = _stream_in_flight(stack, headers, chunks=8)
        received = [next(parts)]  # the stream is in flight

        failures: list[str] = []
        served = 0
        stop = threading.Event()

        def prober() -> None:
            nonlocal served
            while not stop.is_set():
                try:
                    resp = requests.get(f"{stack.url}/v1/models", headers={
                        **headers, "Connection": "close"}, timeout=30)
                    if resp.status_code != 200:
                        failures.append(f"{resp.status_code} {resp.text[:200]}")
                    served += 1
                except requests.RequestException as exc:
                    failures.append(repr(exc))

        thread = threading.Thread(target=prober)
        thread.start()
        try:
            os.kill(master, signal.SIGHUP)
            received += list(parts)  # the rest of the stream, across the reload
            # the old workers exit once drained; new ones serve meanwhile
            wait_until(lambda: not (set(children(master)) & old_workers), timeout=90,
                       what="the old workers to exit")
            new_workers = set(children(master))
            served_before = served
            wait_until(lambda: served > served_before + 20, what="requests on new workers")
        finally:
            stop.set()
            thread.join()

        body = b"".join(received)
        assert body.endswith(b"data: [DONE]\n\n"), body[-300:]
        assert body.count(b'"finish_reason":"stop"') + body.count(b'"finish_reason": "stop"') == 1
        assert len(new_workers) == 2 and not new_workers & old_workers
        assert failures == [], failures[:5]
        assert served > 20
        assert stack.audit_ok()
    finally:
        stack.stop()


def test_sigterm_finishes_streams_and_closes_idle_connections_at_once(tmp_path: Path) -> None:
    stack = Stack(tmp_path).start()
    try:
        _, key = stack.create_account("100")
        headers = {"Authorization": f"Bearer {key}"}
        # An SDK's pooled connection: one request answered, then kept alive with nothing on it.
        idle = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
        idle.request("GET", "/v1/models", headers=headers)
        answered = idle.getresponse()
        assert answered.status == 200 and answered.getheader("Connection") != "close"
        answered.read()

        parts = _stream_in_flight(stack, headers, chunks=6)
        received = [next(parts)]  # in flight

        gateway = stack.procs["gateway"]
        os.kill(gateway.pid, signal.SIGTERM)
        # The idle connection is closed by the server (EOF), long before keepalive (75 s).
        assert idle.sock is not None
        assert idle.sock.recv(1) == b""
        received += list(parts)
        body = b"".join(received)
        assert body.endswith(b"data: [DONE]\n\n"), body[-300:]
        # graceful_timeout is 60 s: the master exits once the stream is done, not then.
        gateway.wait(timeout=30)
        log = (stack.dir / "gateway.log").read_text(errors="replace")
        assert "graceful timeout" not in log.lower(), log[-2000:]
        assert "unhandled error" not in log.lower(), log[-2000:]
        assert stack.audit_ok()
    finally:
        stack.stop()
