"""Imports every model module so metadata (and Alembic) sees all tables."""

from beatra.accounts.models import Account, ApiKey
from beatra.billing.models import LedgerEntry, Wallet

__all__ = ["Account", "ApiKey", "LedgerEntry", "Wallet"]
