"""An account's webhook endpoint: register (URL vetted under the SSRF rules), rotate the secret,
disable (after a 410), delete. Used by the API and the operator CLI."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, update

from beatra.errors import invalid
from beatra.extensions import db, rowcount
from beatra.net import NetError, check_url
from beatra.timeutil import isoformat, utcnow
from beatra.webhooks.models import WebhookEndpoint
from beatra.webhooks.signing import new_secret

URL_MAX = 2048


@dataclass(frozen=True)
class Saved:
    endpoint: WebhookEndpoint
    created: bool
    secret: str | None  # set only when a secret was issued now (shown once)


def vet_url(url: str) -> str:
    """https and a public address (or one BEATRA_NET_ALLOWLIST names); 422 otherwise."""
    url = url.strip() if isinstance(url, str) else url
    if not isinstance(url, str) or not url or len(url) > URL_MAX:
        raise invalid(f"url must be 1-{URL_MAX} characters.", "/url")
    try:
        check_url(url)
    except NetError as exc:
        raise invalid(f"url is not acceptable for webhooks: {exc}.", "/url") from None
    return url


def get(account_id: str) -> WebhookEndpoint | None:
    endpoint = db.session.get(WebhookEndpoint, account_id)
    db.session.commit()
    return endpoint


def save(account_id: str, url: str, *, rotate_secret: bool = False) -> Saved:
    """Create or re-point the endpoint (re-enabling a disabled one). A new endpoint gets a new
    secret; an existing one keeps its secret unless `rotate_secret`."""
    url = vet_url(url)
    now = utcnow()
    endpoint = db.session.get(WebhookEndpoint, account_id)
    if endpoint is None:
        secret = new_secret()
        endpoint = WebhookEndpoint(account_id=account_id, url=url, secret=secret,
                                   status="active", created_at=now, updated_at=now)
        db.session.add(endpoint)
        db.session.commit()
        return Saved(endpoint, True, secret)
    issued = new_secret() if rotate_secret else None
    endpoint.url = url
    endpoint.status = "active"
    endpoint.disabled_reason = None
    endpoint.disabled_at = None
    endpoint.updated_at = now
    if issued:
        endpoint.secret = issued
    db.session.commit()
    return Saved(endpoint, False, issued)


def rotate(account_id: str) -> str | None:
    """A new secret for the existing endpoint; None when there is none."""
    secret = new_secret()
    result = db.session.execute(
        update(WebhookEndpoint).where(WebhookEndpoint.account_id == account_id)
        .values(secret=secret, updated_at=utcnow()))
    db.session.commit()
    return secret if rowcount(result) == 1 else None


def remove(account_id: str) -> bool:
    result = db.session.execute(
        delete(WebhookEndpoint).where(WebhookEndpoint.account_id == account_id))
    db.session.commit()
    return rowcount(result) == 1


def disable(account_id: str, url: str, reason: str) -> bool:
    """After a 410 Gone: stop sending to this URL (a re-pointed endpoint stays active)."""
    now = utcnow()
    result = db.session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.account_id == account_id, WebhookEndpoint.url == url,
               WebhookEndpoint.status == "active")
        .values(status="disabled", disabled_reason=reason[:512], disabled_at=now, updated_at=now))
    db.session.commit()
    return rowcount(result) == 1


def public_view(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, object]:
    return {
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason,
        "secret": secret,
        "created_at": isoformat(endpoint.created_at),
        "updated_at": isoformat(endpoint.updated_at),
    }
