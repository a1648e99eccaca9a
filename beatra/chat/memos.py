"""Remember reasoning relayed with tool calls; restore it for providers that require it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from beatra.chat.models import ReasoningMemo
from beatra.extensions import db, table_of
from beatra.timeutil import utcnow

_table = table_of(ReasoningMemo)
_MAX_ID = 128
# A tool-call turn older than this is not continued in practice; older memos are pruned.
RETENTION = timedelta(days=7)


def remember(account_id: str, by_tool_call: dict[str, str]) -> None:
    rows = [
        {"account_id": account_id, "tool_call_id": call_id, "reasoning_content": text,
         "created_at": utcnow()}
        for call_id, text in by_tool_call.items()
        if call_id and text and len(call_id) <= _MAX_ID
    ]
    if not rows:
        return
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    db.session.execute(insert(_table).on_conflict_do_nothing(), rows)
    # Prune this account's expired memos while we are writing anyway (rare: tool-call turns).
    db.session.execute(delete(_table).where(_table.c.account_id == account_id,
                                            _table.c.created_at < utcnow() - RETENTION))
    db.session.commit()


def recall(account_id: str, tool_call_ids: list[str]) -> str | None:
    """The reasoning that preceded these tool calls, if beatra relayed it."""
    ids = [i for i in tool_call_ids if isinstance(i, str) and len(i) <= _MAX_ID]
    if not ids:
        return None
    return db.session.execute(
        select(_table.c.reasoning_content)
        .where(_table.c.account_id == account_id, _table.c.tool_call_id.in_(ids),
               _table.c.created_at >= utcnow() - RETENTION)
        .limit(1)
    ).scalar_one_or_none()
