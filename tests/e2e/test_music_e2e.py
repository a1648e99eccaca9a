"""Music tasks end to end: gunicorn (gevent worker) + the sandbox's MiniMax and sunoapi.org
simulators, in embedded mode (catalogs/sandbox.yaml: MiniMax hex output) and with Redis and a
separate 4-thread `dramatiq` worker (tests/catalogs/e2e_music.yaml: MiniMax URL output).

Real HTTP from a real client; every track fetched through its content URL and probed; failures
refunded; a Suno task canceled between polls; 200 concurrent Suno tasks on 4 worker threads.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import mutagen
import pytest
import requests
from sqlalchemy import func, select

from beatra.sandbox.media import mp3_bytes
from tests.e2e.procs import TASK_MODES, Account, TaskStack, task_stack, wait_until

pytestmark = pytest.mark.e2e

T2M = "/v1/music/text-to-music"
R2M = "/v1/music/reference-audio-to-music"
E2E_CATALOG = Path(__file__).resolve().parent.parent / "catalogs" / "e2e_music.yaml"
WORKER_THREADS = 4


@pytest.fixture(scope="module", params=TASK_MODES)
def stack(request, tmp_path_factory) -> Iterator[TaskStack]:
    yield from task_stack(request, tmp_path_factory, "music", threads=WORKER_THREADS,
                          catalog=E2E_CATALOG if request.param == "redis" else None)


def _tracks(task: dict) -> list[float]:
    """Fetch every track by its content URL (no API key) and probe it: seconds of audio."""
    seconds = []
    for track in task["output"]["tracks"]:
        resp = requests.get(track["url"], timeout=30)
        assert resp.status_code == 200, track
        assert resp.headers["Content-Type"].startswith(track["mime_type"])
        length = mutagen.File(io.BytesIO(resp.content)).info.length
        assert length > 0 and abs(length * 1000 - track["duration_ms"]) <= 1
        seconds.append(length)
    return seconds


def _charged(task: dict) -> Decimal:
    return Decimal(task["billing"]["charged_credits"])


def _upload(acct: Account, data: bytes) -> dict:
    resp = acct.post("/v1/uploads", files={"file": ("ref.mp3", data, "audio/mpeg")},
                     data={"purpose": "reference_audio"})
    assert resp.status_code in (200, 201), resp.text
    return {"type": "artifact", "artifact_id": resp.json()["artifact_id"]}


def test_both_models_and_both_endpoints_make_playable_songs(stack: TaskStack):
    acct = stack.new_account("500")
    reference = _upload(acct, mp3_bytes(8.0))
    inline = {"type": "data_uri",
              "data": "data:audio/mpeg;base64," + base64.b64encode(mp3_bytes(7.0)).decode()}
    jobs = {
        "minimax": (T2M, {"model": "minimax-music-2.6", "prompt": "[sandbox:seconds=4] indie "
                          "pop", "lyrics": "[Verse]\nwalking home\n[Chorus]\nla la",
                          "title": "Home", "metadata": {"ref": "a1"}}),
        "suno": (T2M, {"model": "suno-5.5", "prompt": "a sea shanty about coffee"}),
        "minimax_cover": (R2M, {"model": "minimax-music-2.6", "prompt": "bossa nova cover",
                                "reference_audio": reference}),
        "suno_cover": (R2M, {"model": "suno-5.5", "prompt": "orchestral", "instrumental": True,
                             "reference_audio": inline}),
        "auto": (T2M, {"model": "auto", "prompt": "ambient drones", "instrumental": True}),
    }
    submitted = {name: acct.submit(path, body) for name, (path, body) in jobs.items()}
    done = {name: acct.wait(t["task_id"]) for name, t in submitted.items()}
    for name, task in done.items():
        assert task["status"] == "succeeded", (name, task)
        assert task["progress"]["percent"] == 100

    [minimax] = done["minimax"]["output"]["tracks"]
    assert (minimax["title"], minimax["lyrics"]) == ("Home", "[Verse]\nwalking home\n[Chorus]\n"
                                                     "la la")
    assert done["minimax"]["metadata"] == {"ref": "a1"}
    assert 3.9 < _tracks(done["minimax"])[0] < 4.2  # [sandbox:seconds=4]
    assert len(_tracks(done["minimax_cover"])) == 1
    assert len(_tracks(done["suno"])) == 2  # sunoapi makes two songs per request
    assert done["suno"]["output"]["tracks"][0]["lyrics"]  # Suno wrote lyrics: we pass them on
    assert len(_tracks(done["suno_cover"])) == 2
    assert done["suno_cover"]["input"]["reference_audio"]["source"] == "data_uri"
    assert done["auto"]["resolved_model"] == "suno-5.5"
    assert [w["code"] for w in done["auto"]["warnings"]] == ["auto_routed"]
    for task in done.values():
        assert Decimal(task["usage"]["audio_seconds"]) > 0
        assert _charged(task) > 0
    assert acct.balance() == Decimal("500") - sum(_charged(t) for t in done.values())


def test_invalid_requests_are_refused_before_queueing(stack: TaskStack):
    acct = stack.new_account("100")
    cases = [
        ({"model": "suno-5.5", "prompt": "x", "lyrics": "la", "instrumental": True}, "/lyrics"),
        ({"model": "minimax-music-2.6", "prompt": "x", "model_options": {"suno": {}}},
         "/model_options/suno"),
        ({"model": "suno-5.5", "prompt": "x", "model_options": {"minimax": {}}},
         "/model_options/minimax"),
    ]
    for body, param in cases:
        resp = acct.post(T2M, json=body)
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["param"] == param
    assert acct.get("/v1/tasks").json()["data"] == []
    assert acct.balance() == Decimal("100")


def test_upstream_failures_end_failed_and_refunded(stack: TaskStack):
    acct = stack.new_account("100")
    cases = {
        ("minimax-music-2.6", "[sandbox:minimax_code=1008] a song"):
            ("upstream_insufficient_balance", False),
        ("minimax-music-2.6", "[sandbox:minimax_code=1026] a song"):
            ("content_policy_violation", False),
        ("suno-5.5", "[sandbox:suno_status=GENERATE_AUDIO_FAILED] a song"):
            ("upstream_error", True),
        ("suno-5.5", "[sandbox:suno_code=429] a song"): ("upstream_insufficient_balance", False),
    }
    ids = {key: acct.submit(T2M, {"model": key[0], "prompt": key[1]})["task_id"]
           for key in cases}
    for key, (code, retryable) in cases.items():
        task = acct.wait(ids[key])
        assert task["status"] == "failed", task
        assert (task["error"]["code"], task["error"]["retryable"]) == (code, retryable), key
        assert task["billing"]["refunded_credits"] == task["billing"]["reserved_credits"]
        assert [k for k, _ in stack.ledger_for(ids[key])] == ["reserve", "refund"]
    assert acct.balance() == Decimal("100")


def test_cancel_while_suno_is_polled(stack: TaskStack):
    acct = stack.new_account("100")
    task = acct.submit(T2M, {"model": "suno-5.5", "prompt": "[sandbox:suno_step=60] slow"})
    task_id = task["task_id"]

    def parked() -> bool:  # submitted upstream, waiting for its next poll
        return stack.task_column(task_id, "wake_at") is not None

    wait_until(parked, what="the Suno task to park between polls")
    resp = acct.post(f"/v1/tasks/{task_id}/cancel", json={"reason": "changed my mind"})
    assert resp.status_code == 202
    assert resp.json()["status"] == "canceled"  # at once: no worker holds it
    assert stack.task_column(task_id, "state")["suno"]["task_id"]
    assert [k for k, _ in stack.ledger_for(task_id)] == ["reserve", "refund"]
    assert acct.balance() == Decimal("100")


@pytest.mark.services
@pytest.mark.parametrize("stack", ["redis"], indirect=True)
def test_200_concurrent_suno_tasks_share_4_worker_threads(stack: TaskStack):
    from beatra.tasks.models import Task

    acct = stack.new_account("5000")
    count = 200
    body = {"model": "suno-5.5", "prompt": "[sandbox:suno_step=2,seconds=1] tiny tune"}
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: acct.submit(T2M, body)["task_id"], range(count)))
    peak = 0

    def all_done() -> bool:
        nonlocal peak
        with stack.db() as session:
            rows = dict(session.execute(
                select(Task.status, func.count()).where(Task.id.in_(ids))
                .group_by(Task.status)).all())
        peak = max(peak, rows.get("running", 0))
        return sum(rows.get(s, 0) for s in ("succeeded", "failed", "canceled")) == count

    wait_until(all_done, timeout=75, interval=0.25, what=f"{count} Suno tasks")
    elapsed = time.monotonic() - started
    print(f"\n{count} Suno tasks on {WORKER_THREADS} threads: {elapsed:.1f}s, "
          f"peak {peak} running at once")
    with stack.db() as session:
        statuses = set(session.scalars(select(Task.status).where(Task.id.in_(ids))))
    assert statuses == {"succeeded"}
    # Far more tasks were in flight at once than there are threads: none held a worker.
    assert peak > 10 * WORKER_THREADS
    sample = acct.task(ids[-1])
    assert len(_tracks(sample)) == 2
