"""Image tasks end to end: gunicorn (gevent worker) + the sandbox upstream, once in embedded mode
(tasks run inside the web process) and once with Redis and a separate `dramatiq` worker.

Real HTTP from a real client; real images fetched through their content URLs; workers killed
with SIGKILL mid-task and a flushed Redis queue recovered by the sweeper; every account's
balance equal to its ledger at the end.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests
from PIL import Image

from tests.e2e.procs import TASK_MODES, Account, TaskStack, task_stack
from tests.unit.media_helpers import serve

pytestmark = pytest.mark.e2e

T2I = "/v1/images/generations"
I2I = "/v1/images/image-to-image"
TERMINAL = ("succeeded", "failed", "canceled")


def png(w: int, h: int, color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="module", params=TASK_MODES)
def stack(request, tmp_path_factory) -> Iterator[TaskStack]:
    yield from task_stack(request, tmp_path_factory, "images")


@pytest.fixture(scope="module")
def picture_url() -> Iterator[str]:
    """An image on a plain HTTP server (allowlisted loopback), for `{"type": "url"}` inputs."""
    body = png(96, 64, (20, 120, 40))

    def handler(req) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "image/png")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    with serve({"/picture.png": handler}) as server:
        yield server.url("/picture.png")


def _fetch_images(task: dict) -> list[Image.Image]:
    out = []
    for item in task["output"]["images"]:
        resp = requests.get(item["url"], timeout=30)  # signed URL: no API key needed
        assert resp.status_code == 200, item
        assert resp.headers["Content-Type"].startswith(item["mime_type"])
        img = Image.open(io.BytesIO(resp.content))
        assert img.size == (item["width"], item["height"])
        out.append(img)
    return out


def _charged(task: dict) -> Decimal:
    return Decimal(task["billing"]["charged_credits"])


def test_text_and_image_to_image_make_real_images(stack: TaskStack, picture_url: str):
    acct = stack.new_account("500")
    upload = acct.post("/v1/uploads", files={"file": ("in.png", png(80, 80, (200, 0, 0)),
                                                      "image/png")})
    assert upload.status_code in (200, 201), upload.text
    artifact = {"type": "artifact", "artifact_id": upload.json()["artifact_id"]}
    extra = [{"type": "data_uri", "data": data_uri(png(32 + i, 32, (i * 15, 60, 90)))}
             for i in range(15)]
    jobs = {
        "t2i": (T2I, {"model": "gpt-image-2", "prompt": "a lighthouse at dusk", "n": 2,
                      "aspect_ratio": "16:9", "output_format": "jpeg", "quality": "hd"}),
        "url": (I2I, {"model": "auto", "prompt": "add a hat",
                      "image": {"type": "url", "url": picture_url}}),
        "artifact": (I2I, {"model": "gpt-image-2", "prompt": "make it blue", "image": artifact,
                           "output_format": "webp"}),
        "data_uri": (I2I, {"model": "gpt-image-2", "prompt": "sketch it", "aspect_ratio": "1:1",
                           "image": {"type": "data_uri",
                                     "data": data_uri(png(40, 40, (1, 2, 3)))}}),
        "sixteen": (I2I, {"model": "gpt-image-2", "prompt": "a collage", "image": artifact,
                          "extra_images": extra}),
    }
    submitted = {name: acct.submit(path, body) for name, (path, body) in jobs.items()}
    assert all(t["status"] == "queued" for t in submitted.values())
    done = {name: acct.wait(t["task_id"]) for name, t in submitted.items()}
    for name, task in done.items():
        assert task["status"] == "succeeded", (name, task)
        assert task["progress"]["percent"] == 100

    t2i = _fetch_images(done["t2i"])
    assert [(i.format, i.size) for i in t2i] == [("JPEG", (1536, 864))] * 2
    assert [i.format for i in _fetch_images(done["artifact"])] == ["WEBP"]
    assert [i.size for i in _fetch_images(done["data_uri"])] == [(1024, 1024)]
    assert len(_fetch_images(done["url"])) == 1
    assert done["url"]["resolved_model"] == "gpt-image-2"
    assert [w["code"] for w in done["url"]["warnings"]] == ["auto_routed"]
    assert done["url"]["input"]["image"]["source"] == "url"
    lines = {line["meter"]: line for line in done["sixteen"]["usage"]["lines"]}
    assert lines["input_image_token"]["quantity"] == str(16 * 323)  # the sandbox's rate

    spent = sum(_charged(t) for t in done.values())
    assert spent > 0
    assert acct.balance() == Decimal("500") - spent


def test_upstream_failures_end_failed_and_refunded(stack: TaskStack):
    acct = stack.new_account("100")
    prompts = {"[sandbox:fail=503] a cat": ("upstream_error", True),
               "[sandbox:policy] a cat": ("content_policy_violation", False),
               "[sandbox:malformed] a cat": ("upstream_error", True)}
    ids = {p: acct.submit(T2I, {"model": "gpt-image-2", "prompt": p})["task_id"]
           for p in prompts}
    for prompt, (code, retryable) in prompts.items():
        task = acct.wait(ids[prompt])
        assert task["status"] == "failed", task
        assert (task["error"]["code"], task["error"]["retryable"]) == (code, retryable)
        assert task["billing"]["refunded_credits"] == task["billing"]["reserved_credits"]
        assert [k for k, _ in stack.ledger_for(ids[prompt])] == ["reserve", "refund"]
    assert acct.balance() == Decimal("100")


def _running(task: dict) -> bool:
    return task["status"] == "running" and (task["progress"] or {}).get("stage") == "generating"


def test_cancel_queued_and_running(stack: TaskStack):
    acct = stack.new_account("100")
    slow = [acct.submit(T2I, {"model": "gpt-image-2", "prompt": f"[sandbox:delay=2] slow {i}"})
            for i in range(stack.threads)]  # every task thread busy
    for task in slow:
        acct.wait(task["task_id"], until=_running)
    queued = acct.submit(T2I, {"model": "gpt-image-2", "prompt": "waits its turn"})
    resp = acct.post(f"/v1/tasks/{queued['task_id']}/cancel", json={"reason": "not needed"})
    assert resp.status_code == 202
    assert (resp.json()["status"], resp.json()["cancel_reason"]) == ("canceled", "not needed")

    resp = acct.post(f"/v1/tasks/{slow[0]['task_id']}/cancel")
    assert resp.status_code == 202
    assert resp.json()["status"] == "running" and resp.json()["cancel_requested_at"]
    canceled = acct.wait(slow[0]["task_id"])
    finished = acct.wait(slow[1]["task_id"])
    assert canceled["status"] == "canceled" and canceled["output"] is None
    assert finished["status"] == "succeeded"
    again = acct.post(f"/v1/tasks/{slow[0]['task_id']}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "canceled"
    assert acct.task(queued["task_id"])["started_at"] is None  # it never ran
    for task_id in (queued["task_id"], slow[0]["task_id"]):
        assert [k for k, _ in stack.ledger_for(task_id)] == ["reserve", "refund"]
    assert acct.balance() == Decimal("100") - _charged(finished)


def test_killed_workers_lose_nothing_and_charge_once(stack: TaskStack):
    acct = stack.new_account("100")
    running = [acct.submit(T2I, {"model": "gpt-image-2", "prompt": f"[sandbox:delay=1.5] {i}"})
               for i in range(stack.threads)]
    queued = acct.submit(T2I, {"model": "gpt-image-2", "prompt": "behind them"})
    for task in running:
        acct.wait(task["task_id"], until=_running)
    stack.kill_task_runners()  # kill -9 mid-task; in embedded mode the queue in memory dies too
    ids = [t["task_id"] for t in (*running, queued)]
    done = [acct.wait(task_id, timeout=60) for task_id in ids]
    assert [t["status"] for t in done] == ["succeeded"] * len(ids)
    for task in done[:-1]:
        assert stack.task_column(task["task_id"], "attempts") == 2  # started again once
    for task_id in ids:
        assert [k for k, _ in stack.ledger_for(task_id)] == ["reserve", "release", "capture"]
    assert acct.balance() == Decimal("100") - sum(_charged(t) for t in done)


@pytest.mark.services
@pytest.mark.parametrize("stack", ["redis"], indirect=True)  # embedded: see the kill test
def test_a_flushed_redis_queue_is_recovered(stack: TaskStack):
    acct = stack.new_account("100")
    stack.kill("tasks")
    task = acct.submit(T2I, {"model": "gpt-image-2", "prompt": "lost and found"})
    stack.flush_redis()  # the message is gone; only the database knows about the task
    stack.start_task_workers()
    done = acct.wait(task["task_id"], timeout=60)
    assert done["status"] == "succeeded"
    assert stack.task_column(task["task_id"], "attempts") == 1
    assert [k for k, _ in stack.ledger_for(task["task_id"])] == ["reserve", "release", "capture"]


def _pages(acct: Account, query: str) -> tuple[list[str], int]:
    ids, cursor, pages = [], None, 0
    while True:
        params = dict(p.split("=") for p in query.split("&") if p)
        if cursor:
            params["cursor"] = cursor
        resp = acct.get("/v1/tasks", params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages += 1
        ids += [t["task_id"] for t in body["data"]]
        if not body["has_more"]:
            return ids, pages
        cursor = body["next_cursor"]


def test_list_pages_filters_expand_and_isolation(stack: TaskStack):
    acct, other = stack.new_account("100"), stack.new_account("100", name="other")
    made = [acct.submit(T2I, {"model": "gpt-image-2", "prompt": f"tile {i}"})["task_id"]
            for i in range(5)]
    made.append(acct.submit(T2I, {"model": "gpt-image-2",
                                  "prompt": "[sandbox:fail=500] broken"})["task_id"])
    for task_id in made:
        acct.wait(task_id)

    newest_first, pages = _pages(acct, "limit=2")
    assert (newest_first, pages) == (made[::-1], 3)
    assert _pages(acct, "limit=4&order=asc") == (made, 2)
    assert _pages(acct, "status=failed")[0] == [made[-1]]
    assert _pages(acct, "status[]=succeeded&capability=images.generations&limit=3")[0] == \
        made[:5][::-1]
    assert _pages(acct, "capability=images.image_to_image")[0] == []

    summary = acct.get("/v1/tasks", params={"limit": 1}).json()["data"][0]
    assert "output" not in summary and "billing" not in summary
    full = acct.get("/v1/tasks", params={"limit": 1, "order": "asc",
                                         "expand": "all"}).json()["data"][0]
    assert full["task_id"] == made[0] and full["billing"]["charged_credits"]
    assert len(_fetch_images(full)) == 1

    for method, path in (("get", f"/v1/tasks/{made[0]}"), ("post", f"/v1/tasks/{made[0]}/cancel")):
        resp = getattr(other.http, method)(other.url(path), timeout=30)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "not_found"
    assert other.get("/v1/tasks", params={"expand": "all"}).json()["data"] == []


def test_every_balance_equals_its_ledger(stack: TaskStack):
    assert stack.audit_ok()  # `flask --app beatra credits audit` over every wallet
