"""Zero-downtime reload: `kill -HUP` the gunicorn master while a stream is in flight and new
connections keep arriving. New workers start, the old ones stop accepting and drain: the
stream finishes whole and no connection is refused or answered 5xx."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
import requests

from tests.e2e.procs import children, wait_until
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


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

        # Connection: close so the old worker need not wait for this idle keep-alive
        # connection (up to graceful_timeout) before it exits; it would not refuse anyone.
        stream = requests.post(
            f"{stack.url}/v1/chat/completions", stream=True, timeout=60,
            headers={**headers, "Connection": "close"},
            json={"model": "gpt-4o-mini", "stream": True, "messages": [
                {"role": "user", "content": "[sandbox:chunks=8,chunk_delay=0.5] hi"}]})
        assert stream.status_code == 200
        parts = stream.iter_content(None)
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
