"""A task on the wire: the full TaskEnvelope, or the TaskSummary the list returns by default.

Output items that name an artifact (`artifact_id`) get a fresh content `url` on every read,
because content URLs expire; the stored output holds only the artifact facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from beatra.billing.money import fmt
from beatra.catalog.registry import current_catalog
from beatra.config import current_settings
from beatra.extensions import db
from beatra.storage.models import Artifact
from beatra.storage.service import content_url
from beatra.tasks.models import Task
from beatra.timeutil import isoformat
from beatra.webhooks.outbox import callbacks_for

EXPANDABLE = ("output", "usage", "billing", "callback", "input")


def _links(task: Task) -> dict[str, Any]:
    base = current_settings().public_url
    own = f"{base}/v1/tasks/{task.id}"
    return {"self": own, "cancel": None if task.terminal else f"{own}/cancel"}


def summary(task: Task) -> dict[str, Any]:
    return {
        "object": "task",
        "task_id": task.id,
        "status": task.status,
        "capability": task.capability,
        "model": task.model,
        # Chosen at submission (an `auto_routed` warning names it then too), so shown from the
        # start: a queued task's envelope says which model will run.
        "resolved_model": task.resolved_model,
        "metadata": task.meta,
        "progress": task.progress,
        "warnings": task.warnings or [],
        "error": task.error,
        "created_at": isoformat(task.created_at),
        "started_at": isoformat(task.started_at),
        "completed_at": isoformat(task.completed_at),
        "cancel_requested_at": isoformat(task.cancel_requested_at),
        "cancel_reason": task.cancel_reason,
        "links": _links(task),
    }


def _billing(task: Task) -> dict[str, Any]:
    usd = current_catalog().usd
    return {
        "reserved_credits": fmt(task.reserved_credits),
        "charged_credits": fmt(task.charged_credits),
        "refunded_credits": fmt(task.refunded_credits),
        "charged_credits_usd_reference": (
            fmt(usd(task.charged_credits)) if task.charged_credits is not None else None),
        "refunded_credits_usd_reference": (
            fmt(usd(task.refunded_credits)) if task.refunded_credits is not None else None),
        "currency": "USD",
    }


def _artifact_ids(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        if isinstance(node.get("artifact_id"), str):
            yield node["artifact_id"]
        for value in node.values():
            yield from _artifact_ids(value)
    elif isinstance(node, list):
        for value in node:
            yield from _artifact_ids(value)


def _with_urls(node: Any, urls: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _with_urls(v, urls) for k, v in node.items()}
        if node.get("artifact_id") in urls:
            out["url"] = urls[node["artifact_id"]]
        return out
    if isinstance(node, list):
        return [_with_urls(v, urls) for v in node]
    return node


def _output_urls(tasks: list[Task]) -> dict[str, str]:
    wanted: dict[str, set[str]] = {}
    for task in tasks:
        if task.output:
            wanted.setdefault(task.account_id, set()).update(_artifact_ids(task.output))
    urls: dict[str, str] = {}
    for account_id, ids in wanted.items():
        rows = db.session.scalars(
            select(Artifact).where(Artifact.account_id == account_id, Artifact.id.in_(ids)))
        urls.update({a.id: content_url(a) for a in rows})
    return urls


def render(tasks: list[Task], expand: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Envelopes for `tasks`: summaries plus the `expand`ed fields (None: every field)."""
    fields = frozenset(EXPANDABLE) if expand is None else expand
    urls = _output_urls(tasks) if "output" in fields else {}
    callbacks = callbacks_for([t.id for t in tasks]) if "callback" in fields else {}
    out = []
    for task in tasks:
        item = summary(task)
        if "input" in fields:
            item["input"] = task.input
        if "output" in fields:
            item["output"] = _with_urls(task.output, urls) if task.output else None
        if "usage" in fields:
            item["usage"] = task.usage
        if "billing" in fields:
            item["billing"] = _billing(task)
        if "callback" in fields:
            item["callback"] = callbacks.get(task.id)  # null: no webhook for this task
        out.append(item)
    return out


def envelope(task: Task) -> dict[str, Any]:
    return render([task])[0]
