"""Imports every model module so metadata (and Alembic) sees all tables."""

from beatra.accounts.models import Account, ApiKey
from beatra.billing.models import LedgerEntry, Wallet
from beatra.chat.models import ReasoningMemo

__all__ = ["Account", "ApiKey", "LedgerEntry", "ReasoningMemo", "Wallet"]
