"""Imports every model module so metadata (and Alembic) sees all tables."""

from beatra.accounts.models import Account, ApiKey
from beatra.billing.models import LedgerEntry, Wallet
from beatra.chat.models import ReasoningMemo
from beatra.idempotency.models import IdempotencyRecord
from beatra.storage.models import Artifact
from beatra.tasks.models import Task
from beatra.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = ["Account", "ApiKey", "Artifact", "IdempotencyRecord", "LedgerEntry", "ReasoningMemo",
           "Task", "Wallet", "WebhookDelivery", "WebhookEndpoint"]
