"""Reasoning relayed with tool calls, kept so it can be restored on the next turn.

DeepSeek and Kimi (thinking mode) reject a history whose assistant tool-call turns lack their
`reasoning_content`, while our contract tells clients not to echo it back. So beatra remembers
what it relayed, keyed by (account, tool call id).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from beatra.extensions import Model
from beatra.timeutil import utcnow


class ReasoningMemo(Model):
    __tablename__ = "reasoning_memos"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    tool_call_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    reasoning_content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 index=True)
