"""The sandbox as a real process: ``python -m beatra.sandbox`` under gevent on loopback."""

from __future__ import annotations

import io
import json
import selectors
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from mutagen.mp3 import MP3
from sandbox_helpers import AUTH, content_of, parse_sse, user

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    # stderr goes to a file, not a pipe, so a chatty server can never block on it.
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "beatra.sandbox", "--port", str(free_port())],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True,
        )
        try:
            selector = selectors.DefaultSelector()
            selector.register(proc.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=20)  # the process prints once it has bound
            line = proc.stdout.readline() if ready else ""
            if not line.startswith("sandbox listening on http://127.0.0.1:"):
                errors.seek(0)
                pytest.fail(f"sandbox did not start: {line!r} {errors.read()}")
            yield line.split(" on ", 1)[1].strip()
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def stream_chat(base_url: str, text: str, **extra) -> requests.Response:
    body = {"model": "gpt-4o", "messages": user(text), "stream": True, **extra}
    return requests.post(f"{base_url}/openai/v1/chat/completions", json=body, headers=AUTH,
                         stream=True, timeout=30)


def test_streams_a_chat_completion(base_url):
    assert requests.get(f"{base_url}/health", timeout=5).json() == {"ok": True}
    resp = stream_chat(base_url, "hello over a socket",
                       stream_options={"include_usage": True})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    events = parse_sse(resp.text)
    assert events[-1] == "[DONE]" and events[-2]["usage"]["total_tokens"] > 0
    assert content_of(events) == "Sandbox reply from gpt-4o: hello over a socket"


def test_truncate_breaks_the_connection(base_url):
    resp = stream_chat(base_url, "one two three four [sandbox:truncate]")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        b"".join(resp.iter_content(None))


def test_many_concurrent_slow_streams(base_url):
    def one(i: int) -> bool:
        resp = stream_chat(base_url, f"stream {i} [sandbox:chunks=4,chunk_delay=0.05]")
        return resp.text.endswith("data: [DONE]\n\n")

    with ThreadPoolExecutor(max_workers=100) as pool:
        assert all(pool.map(one, range(100)))


def test_music_urls_and_self_fetch(base_url):
    song = requests.post(f"{base_url}/minimax/v1/music_generation", headers=AUTH, timeout=30,
                         json={"model": "music-2.6", "prompt": "p", "lyrics": "la la",
                               "output_format": "url"}).json()
    url = song["data"]["audio"]
    assert url.startswith(base_url)
    audio = requests.get(url, timeout=10)
    assert audio.headers["Content-Type"] == "audio/mpeg"
    assert MP3(io.BytesIO(audio.content)).info.length > 0
    # upload-cover fetches uploadUrl over HTTP; here it is the sandbox's own file.
    body = {"customMode": False, "model": "V5", "callBackUrl": "http://cb", "prompt": "p",
            "uploadUrl": url}
    task = requests.post(f"{base_url}/suno/api/v1/generate/upload-cover", json=body,
                         headers=AUTH, timeout=30).json()
    assert task["code"] == 200, task
    info = requests.get(f"{base_url}/suno/api/v1/generate/record-info",
                        params={"taskId": task["data"]["taskId"]}, headers=AUTH, timeout=10)
    assert json.loads(info.json()["data"]["param"])["uploadUrl"] == url
