"""Helpers for the task engine and image tests: upstream replies, real image bytes, ledger
reads, and a runtime whose messages are recorded instead of sent (to run steps by hand)."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import Flask
from PIL import Image
from sqlalchemy import select, update

from beatra.billing.models import LedgerEntry
from beatra.extensions import db
from beatra.tasks import service
from beatra.tasks.models import Task
from beatra.tasks.pricing import PriceTable
from beatra.tasks.runtime import TaskRuntime, runtime_for

GEN_A = "http://upstream-a.test/v1/images/generations"
GEN_B = "http://upstream-b.test/v1/images/generations"
EDIT_A = "http://upstream-a.test/v1/images/edits"
EDIT_B = "http://upstream-b.test/v1/images/edits"

IMAGES_CATALOG = Path(__file__).resolve().parent.parent / "catalogs" / "images.yaml"
# Settings for unit tests: the image catalog, quick heartbeats and leases; the sweeper is
# called by hand.
FAST = {"catalog_path": str(IMAGES_CATALOG), "task_heartbeat_seconds": 0.2,
        "task_lease_seconds": 2.0, "task_sweep_seconds": 3600.0, "task_requeue_seconds": 60.0}


def image_bytes(w: int = 64, h: int = 48, fmt: str = "PNG", color: tuple = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, fmt)
    return buf.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def usage(text_in: int = 12, image_in: int = 0, image_out: int = 1056,
          text_out: int = 0) -> dict[str, Any]:
    return {"input_tokens": text_in + image_in,
            "input_tokens_details": {"text_tokens": text_in, "image_tokens": image_in},
            "output_tokens": image_out + text_out,
            "output_tokens_details": {"image_tokens": image_out, "text_tokens": text_out},
            "total_tokens": text_in + image_in + image_out + text_out}


def images_reply(n: int = 1, *, size: str = "1024x1024", quality: str = "medium",
                 fmt: str = "png", use: dict[str, Any] | bool | None = None,
                 w: int = 64, h: int = 48) -> dict[str, Any]:
    pil = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt]
    data = [{"b64_json": base64.b64encode(image_bytes(w, h, pil, (10 * i, 90, 200))).decode()}
            for i in range(n)]
    reply: dict[str, Any] = {"created": 1713833628, "background": "opaque", "output_format": fmt,
                             "quality": quality, "size": size, "data": data}
    if use is not False:
        reply["usage"] = use if isinstance(use, dict) else usage()
    return reply


def openai_error(status: int, message: str, code: str | None = None,
                 kind: str = "invalid_request_error") -> tuple[int, dict, str]:
    return status, {}, json.dumps({"error": {"message": message, "type": kind, "param": None,
                                             "code": code}})


def submit_direct(app: Flask, account: Any, capability: str, hold: str,
                  task_input: dict[str, Any] | None = None) -> str:
    """Queue a task for `capability` (a test handler) without the API, and send its message:
    priced at 1 credit per image_count; no API key."""
    with app.test_request_context():
        task = service.submit(
            account_id=account.account_id, key_id=None, capability=capability,
            requested_model="m", resolved_model="m", task_input=task_input or {},
            hold=Decimal(hold), prices=PriceTable({"image_count": Decimal("1")}, Decimal("100")))
        runtime_for(app).send_task(task.id)
        return task.id


def ledger(app: Flask, task_id: str) -> list[tuple[str, Decimal]]:
    with app.app_context():
        rows = db.session.scalars(select(LedgerEntry).where(LedgerEntry.ref == task_id)
                                  .order_by(LedgerEntry.id))
        return [(e.kind, e.amount) for e in rows]


def balance(client: Any, account: Any) -> Decimal:
    from beatra.billing import wallet

    with client.application.app_context():
        return wallet.balance(account.account_id)


def task_row(app: Flask, task_id: str) -> Task:
    with app.app_context():
        task = db.session.get(Task, task_id)
        assert task is not None
        db.session.expunge(task)
        return task


def age(app: Flask, task_id: str, **values: Any) -> None:
    """Set bookkeeping columns directly (e.g. push a lease or enqueued_at into the past)."""
    with app.app_context():
        db.session.execute(update(Task).where(Task.id == task_id).values(**values))
        db.session.commit()


@dataclass
class Recorder:
    """Stands in for `TaskRuntime.enqueue`: remembers messages instead of sending them."""

    sent: list[tuple[str, float]] = field(default_factory=list)

    def __call__(self, task_id: str, *, delay_seconds: float = 0) -> None:
        self.sent.append((task_id, delay_seconds))


def hold_messages(app: Flask, monkeypatch: Any) -> tuple[TaskRuntime, Recorder]:
    runtime = runtime_for(app)
    recorder = Recorder()
    monkeypatch.setattr(runtime, "enqueue", recorder)
    return runtime, recorder


def run_step(app: Flask, task_id: str) -> None:
    """Run one task step synchronously in this thread, as a worker would."""
    from beatra.tasks.engine import execute

    with app.app_context():
        execute(task_id, runtime_for(app))


def submit(client: Any, account: Any, path: str = "/v1/images/generations",
           **body: Any) -> dict[str, Any]:
    payload = {"model": "gpt-image-2", "prompt": "a red fox", **body}
    resp = client.post(path, json=payload, headers=account.headers)
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()


def get(client: Any, account: Any, task_id: str) -> dict[str, Any]:
    resp = client.get(f"/v1/tasks/{task_id}", headers=account.headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def finished(client: Any, account: Any, task_id: str, timeout: float = 30) -> dict[str, Any]:
    """Wait for the embedded runner to process every message, then read the task."""
    runtime_for(client.application).join(timeout)
    return get(client, account, task_id)

