"""The /openai/v1 images surface end to end with the official OpenAI SDKs, unchanged: Python
(`openai`) in this process and Node (`tests/e2e/node`, installed by `npm ci`) as a subprocess,
against gunicorn (gevent worker) and the sandbox upstream, with tasks run in the web process
and by separate dramatiq workers (Redis mode).

Covered for both: generate (url), edit with two images, b64_json, the wait ending before the
task (504 naming the task, no automatic retry that would charge again), 402, and an idempotent
retry (same Idempotency-Key → same task, charged once).
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openai
import pytest
import requests
from PIL import Image

from tests.conftest import need_service
from tests.e2e.procs import TASK_MODES, TaskStack, task_stack, wait_until

pytestmark = pytest.mark.e2e

NODE_DIR = Path(__file__).resolve().parent / "node"


def png(w: int, h: int, color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module", params=TASK_MODES)
def stack(request, tmp_path_factory) -> Iterator[TaskStack]:
    """Embedded (tasks in the web process) and Redis mode (separate dramatiq workers): the
    wait only reads the task row, so it works the same across processes."""
    yield from task_stack(request, tmp_path_factory, "openai-images", threads=4)


def sdk(stack: TaskStack, key: str, **options) -> openai.OpenAI:
    options = {"max_retries": 0, "timeout": 60, **options}
    return openai.OpenAI(base_url=f"{stack.url}/openai/v1", api_key=key, **options)


def fetch_image(url: str) -> Image.Image:
    resp = requests.get(url, timeout=30)  # a signed content URL: no API key
    assert resp.status_code == 200, resp.text
    return Image.open(io.BytesIO(resp.content))


def task_count(stack: TaskStack, key: str) -> int:
    resp = requests.get(f"{stack.url}/v1/tasks", headers={"Authorization": f"Bearer {key}"},
                        timeout=30)
    return len(resp.json()["data"])


def kinds(stack: TaskStack, task_id: str) -> list[str]:
    return [kind for kind, _ in stack.ledger_for(task_id)]


# --- Python SDK -------------------------------------------------------------------------


def test_python_generate_url_and_b64(stack: TaskStack):
    acct = stack.new_account("100")
    client = sdk(stack, acct.key)
    res = client.images.generate(model="gpt-image-2", prompt="a lighthouse", n=2,
                                 size="1024x1024")
    assert len(res.data) == 2
    assert [fetch_image(d.url).size for d in res.data] == [(1024, 1024)] * 2
    assert res.usage is not None and res.usage.total_tokens > 0
    extra = res.model_extra or {}
    task_id = extra["beatra"]["task_id"]
    charged = Decimal((res.usage.model_extra or {})["credits"])  # beatra's extra usage field
    assert charged == Decimal(extra["beatra"]["charged_credits"]) > 0
    assert stack.balance(acct.account_id) == Decimal("100") - charged
    assert kinds(stack, task_id).count("capture") == 1

    b64 = client.images.generate(model="gpt-image-2", prompt="a boat",
                                 response_format="b64_json", output_format="jpeg")
    assert b64.data[0].url is None
    img = Image.open(io.BytesIO(base64.b64decode(b64.data[0].b64_json)))
    assert img.format == "JPEG"
    assert stack.audit_ok()


def test_python_edit_with_two_images(stack: TaskStack):
    acct = stack.new_account("100")
    res = sdk(stack, acct.key).images.edit(
        model="gpt-image-2", prompt="merge them",
        image=[("a.png", png(64, 64, (200, 0, 0)), "image/png"),
               ("b.png", png(48, 64, (0, 0, 200)), "image/png")])
    assert len(res.data) == 1 and fetch_image(res.data[0].url).format == "PNG"
    task = acct.task(res.model_extra["beatra"]["task_id"])
    assert task["capability"] == "images.image_to_image"
    assert len(task["input"]["extra_images"]) == 1
    assert res.usage.input_tokens_details.image_tokens > 0


def test_python_timeout_names_the_task_and_is_not_retried(stack: TaskStack):
    acct = stack.new_account("100")
    # timeout=4: the SDK sends X-Stainless-Read-Timeout: 4.0 and the gateway answers after
    # 2 s; max_retries=2 shows the SDK obeys `x-should-retry: false` (no second task).
    client = sdk(stack, acct.key, timeout=4, max_retries=2)
    with pytest.raises(openai.APIStatusError) as info:
        client.images.generate(model="gpt-image-2", prompt="a slow fox [sandbox:delay=6]")
    assert info.value.status_code == 504
    error = info.value.body
    assert error["code"] == "task_pending"
    task_id = error["details"]["task_id"]
    assert task_id in error["message"]
    assert task_count(stack, acct.key) == 1
    done = wait_until(lambda: acct.task(task_id)["status"] == "succeeded" or None,
                      timeout=60, what="the task to finish")
    assert done


def test_python_keyed_retry_waits_on_the_same_task(stack: TaskStack):
    acct = stack.new_account("100")
    key = f"py-{uuid.uuid4()}"
    # The first waits end before the task does; the SDK retries (x-should-retry: true, the
    # key makes it safe) and the last attempt gets the images of that one task.
    client = sdk(stack, acct.key, timeout=4, max_retries=6)
    res = client.images.generate(model="gpt-image-2", prompt="a patient fox [sandbox:delay=5]",
                                 extra_headers={"Idempotency-Key": key})
    task_id = res.model_extra["beatra"]["task_id"]
    again = sdk(stack, acct.key).images.generate(
        model="gpt-image-2", prompt="a patient fox [sandbox:delay=5]",
        extra_headers={"Idempotency-Key": key})
    assert again.model_extra["beatra"]["task_id"] == task_id
    assert task_count(stack, acct.key) == 1
    assert kinds(stack, task_id).count("capture") == 1
    assert kinds(stack, task_id).count("reserve") == 1
    charged = Decimal(res.model_extra["beatra"]["charged_credits"])
    assert stack.balance(acct.account_id) == Decimal("100") - charged


def test_python_insufficient_balance_is_402(stack: TaskStack):
    acct = stack.new_account("0.001")
    with pytest.raises(openai.APIStatusError) as info:
        sdk(stack, acct.key).images.generate(model="gpt-image-2", prompt="a fox")
    assert info.value.status_code == 402
    assert info.value.body["code"] == "insufficient_balance"
    assert task_count(stack, acct.key) == 0


# --- Node SDK ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node(stack: TaskStack, tmp_path_factory):
    installed = (NODE_DIR / "node_modules" / "openai" / "package.json").exists()
    need_service("node + the openai npm package", bool(shutil.which("node")) and installed,
                 "run `npm ci --prefix tests/e2e/node`")
    tmp = tmp_path_factory.mktemp("node-inputs")
    (tmp / "a.png").write_bytes(png(64, 64, (10, 200, 10)))
    (tmp / "b.png").write_bytes(png(64, 32, (10, 10, 200)))
    acct = stack.new_account("100")
    poor = stack.new_account("0.001")

    def run(scenario: str) -> dict:
        env = {"PATH": stack.env["PATH"], "BEATRA_URL": stack.url, "BEATRA_KEY": acct.key,
               "BEATRA_POOR_KEY": poor.key, "BEATRA_PNG_A": str(tmp / "a.png"),
               "BEATRA_PNG_B": str(tmp / "b.png")}
        out = subprocess.run(["node", "images_sdk.mjs", scenario], cwd=NODE_DIR, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    run.account = acct  # type: ignore[attr-defined]
    run.poor = poor  # type: ignore[attr-defined]
    return run


def test_node_generate_edit_and_b64(stack: TaskStack, node):
    gen = node("generate")
    assert len(gen["urls"]) == 2 and all(fetch_image(u).format == "PNG" for u in gen["urls"])
    assert Decimal(gen["usage"]["credits"]) > 0
    edit = node("edit")
    assert len(edit["urls"]) == 1
    task = node.account.task(edit["beatra"]["task_id"])
    assert task["capability"] == "images.image_to_image"
    assert len(task["input"]["extra_images"]) == 1
    b64 = node("b64")
    assert Image.open(io.BytesIO(base64.b64decode(b64["b64"][0]))).format == "JPEG"


def test_node_timeout_402_and_idempotent_retry(stack: TaskStack, node):
    before = task_count(stack, node.account.key)
    late = node("timeout")
    assert late["status"] == 504 and late["error"]["code"] == "task_pending"
    assert late["error"]["details"]["task_id"] in late["error"]["message"]
    assert task_count(stack, node.account.key) == before + 1  # not retried by the SDK

    poor = node("poor")
    assert poor["status"] == 402 and poor["error"]["code"] == "insufficient_balance"

    same = node("idempotent")
    assert same["tasks"][0] == same["tasks"][1]
    assert same["credits"][0] == same["credits"][1]
    assert kinds(stack, same["tasks"][0]).count("capture") == 1
    assert stack.audit_ok()
