"""Operator commands: `flask --app beatra accounts|keys|credits|webhooks …`.

These exact forms are a public interface (README documents them; automation relies on them).
Bad arguments exit non-zero with a one-line message and write nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import click
import orjson
from flask import Flask, current_app
from flask.cli import AppGroup

from beatra import config, devenv
from beatra.accounts import service as accounts
from beatra.accounts.models import ApiKey
from beatra.billing import holds, wallet
from beatra.billing.money import AmountOutOfRange, fmt, parse_credits
from beatra.errors import ApiError
from beatra.timeutil import isoformat, utcnow
from beatra.webhooks import endpoints as webhook_endpoints


class _OneLineError(click.ClickException):
    """Printed as a single `Error: …` line (click's usage errors print the usage too)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance


class OneLineCommand(click.Command):
    """Bad arguments end with one line and a non-zero exit, as automation expects."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _OneLineError(exc.format_message(), exc.exit_code) from None

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _OneLineError(exc.format_message(), exc.exit_code) from None


def _amount(text: str, *, allow_zero: bool = False) -> Decimal:
    try:
        value = parse_credits(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if value < 0 or (value == 0 and not allow_zero):
        raise click.BadParameter(f"must be {'non-negative' if allow_zero else 'positive'}: {text}")
    return value


def _require_account(account_id: str) -> None:
    if accounts.get_account(account_id) is None:
        raise click.ClickException(f"no such account: {account_id}")


def _emit(as_json: bool, data: dict, text: str) -> None:
    click.echo(orjson.dumps(data).decode() if as_json else text)


account_option = click.option("--account", "account_id", required=True,
                              help="Account id (acct_…).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")

accounts_cli = AppGroup("accounts", help="Manage accounts.")
keys_cli = AppGroup("keys", help="Issue and revoke API keys.")
credits_cli = AppGroup("credits", help="Grant and inspect credits.")
webhooks_cli = AppGroup("webhooks", help="Manage an account's webhook endpoint.")


@accounts_cli.command("create", cls=OneLineCommand)
@click.option("--name", required=True, help="Account display name.")
@click.option("--credits", "credits_", default="0", help="Initial credits (decimal).")
@json_option
def accounts_create(name: str, credits_: str, as_json: bool) -> None:
    name = name.strip()
    if not name or len(name) > 200:
        raise click.BadParameter("must be 1-200 characters", param_hint="--name")
    amount = _amount(credits_, allow_zero=True)
    account = accounts.create_account(name, amount)
    _emit(as_json, {"account_id": account.id, "name": account.name, "balance": fmt(amount)},
          f"created account {account.id} ({account.name}) with {fmt(amount)} credits")


@accounts_cli.command("list", cls=OneLineCommand)
@json_option
def accounts_list(as_json: bool) -> None:
    """Every account with its balance, oldest first."""
    rows = [{"account_id": account.id, "name": account.name, "balance": fmt(balance),
             "created_at": isoformat(account.created_at)}
            for account, balance in accounts.list_accounts()]
    lines = [f"{r['account_id']}  {r['balance']:>16}  {r['created_at']}  {r['name']}"
             for r in rows] or ["no accounts"]
    _emit(as_json, {"accounts": rows}, "\n".join(lines))


def _future_instant(text: str) -> datetime:
    """An RFC 3339 date-time in the future (no offset means UTC)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"not an RFC 3339 date-time: {text!r}",
                                 param_hint="--expires-at") from None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value <= utcnow():
        raise click.BadParameter(f"must be in the future: {text}", param_hint="--expires-at")
    return value


def _key_name(text: str) -> str:
    name = text.strip()
    if not name or len(name) > 200:
        raise click.BadParameter("must be 1-200 characters", param_hint="--name")
    return name


def _credit_limit(text: str) -> Decimal:
    try:
        return _amount(text, allow_zero=True)
    except click.BadParameter as exc:
        raise click.BadParameter(exc.message, param_hint="--credit-limit") from None


def _key_view(key: ApiKey) -> dict[str, object]:
    return {"key_id": key.id, "name": key.name, "prefix": key.prefix,
            "created_at": isoformat(key.created_at), "last_used_at": isoformat(key.last_used_at),
            "revoked_at": isoformat(key.revoked_at), "expires_at": isoformat(key.expires_at),
            "credit_limit": fmt(key.credit_limit), "spent": fmt(key.spent)}


@keys_cli.command("create", cls=OneLineCommand)
@account_option
@click.option("--name", default=None, help="A label for the key (1-200 characters).")
@click.option("--credit-limit", "credit_limit", default=None,
              help="Most credits the key may spend (captured plus held); default: no limit.")
@click.option("--expires-at", "expires_at", default=None,
              help="RFC 3339 date-time after which the key answers 401.")
@json_option
def keys_create(account_id: str, name: str | None, credit_limit: str | None,
                expires_at: str | None, as_json: bool) -> None:
    name = _key_name(name) if name is not None else None
    limit = _credit_limit(credit_limit) if credit_limit is not None else None
    expiry = _future_instant(expires_at) if expires_at is not None else None
    _require_account(account_id)
    key, secret = accounts.create_key(account_id, name=name, credit_limit=limit,
                                      expires_at=expiry)
    _emit(as_json, {"key_id": key.id, "account_id": account_id, "api_key": secret,
                    "name": key.name, "credit_limit": fmt(key.credit_limit),
                    "expires_at": isoformat(key.expires_at)},
          f"created key {key.id} for {account_id}\napi key (shown once): {secret}")


@keys_cli.command("update", cls=OneLineCommand)
@click.argument("key_id")
@click.option("--name", default=None, help="A new label (1-200 characters).")
@click.option("--credit-limit", "credit_limit", default=None,
              help="New credit limit, or 'none' for no limit.")
@click.option("--expires-at", "expires_at", default=None,
              help="New RFC 3339 expiry, or 'never'.")
@json_option
def keys_update(key_id: str, name: str | None, credit_limit: str | None,
                expires_at: str | None, as_json: bool) -> None:
    """Change a key's name, credit limit or expiry (without options: show the key)."""
    changes: dict[str, object] = {}
    if name is not None:
        changes["name"] = _key_name(name)
    if credit_limit is not None:
        changes["credit_limit"] = (None if credit_limit == "none"
                                   else _credit_limit(credit_limit))
    if expires_at is not None:
        changes["expires_at"] = None if expires_at == "never" else _future_instant(expires_at)
    key = accounts.update_key(key_id, **changes)  # type: ignore[arg-type]
    if key is None:
        raise click.ClickException(f"no such key: {key_id}")
    view = _key_view(key)
    _emit(as_json, view, f"key {key.id}: name {key.name or '-'}, spent {view['spent']} of "
                         f"{view['credit_limit'] or 'no limit'}, expires "
                         f"{view['expires_at'] or 'never'}")


@keys_cli.command("list", cls=OneLineCommand)
@account_option
@json_option
def keys_list(account_id: str, as_json: bool) -> None:
    """An account's keys (revoked and expired ones too), oldest first."""
    _require_account(account_id)
    keys = accounts.list_keys(account_id)
    rows = [_key_view(key) for key in keys]
    lines = []
    for key, r in zip(keys, rows, strict=True):
        state = ("revoked" if key.revoked_at else
                 "expired" if accounts.expired(key.expires_at) else "active")
        lines.append(f"{key.id}  btr_{key.prefix}_…  {state:<7}  spent {r['spent']} of "
                     f"{r['credit_limit'] or 'no limit'}  last used {r['last_used_at'] or 'never'}"
                     f"  {key.name or ''}".rstrip())
    _emit(as_json, {"keys": rows}, "\n".join(lines) or f"no keys for {account_id}")


@keys_cli.command("revoke", cls=OneLineCommand)
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    if not accounts.revoke_key(key_id):
        raise click.ClickException(f"no active key: {key_id}")
    click.echo(f"revoked key {key_id}")


class _Limit(click.ParamType):
    """A non-negative integer (0 = unlimited), or `default` for the catalog's value."""

    name = "N|default"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> int | str:
        if value == "default":
            return "default"
        try:
            number = int(str(value))
        except ValueError:
            number = -1
        if number < 0:
            self.fail(f"must be a non-negative integer or 'default', not {value!r}", param, ctx)
        return number


@keys_cli.command("limits", cls=OneLineCommand)
@click.argument("key_id")
@click.option("--rpm", type=_Limit(), default=None,
              help="Requests per minute (0 = unlimited, 'default' = the catalog's).")
@click.option("--streams", type=_Limit(), default=None,
              help="Concurrent streams (0 = unlimited, 'default' = the catalog's).")
@json_option
def keys_limits(key_id: str, rpm: int | str | None, streams: int | str | None,
                as_json: bool) -> None:
    """Show or set a key's rate limits (without options: show them)."""
    values = {name: None if isinstance(value, str) else value  # "default": the catalog's
              for name, value in (("rpm_limit", rpm), ("stream_limit", streams))
              if value is not None}
    key = accounts.set_key_limits(key_id, values)
    if key is None:
        raise click.ClickException(f"no such key: {key_id}")

    def shown(value: int | None) -> str:
        return "default" if value is None else "unlimited" if value == 0 else str(value)

    _emit(as_json, {"key_id": key.id, "rpm": key.rpm_limit, "streams": key.stream_limit},
          f"key {key.id}: rpm {shown(key.rpm_limit)}, streams {shown(key.stream_limit)}")


def _apply_running_allowlist() -> None:
    """Without BEATRA_NET_ALLOWLIST here, check the URL as a running `make run` would (its
    allowlist; beatra.devenv), so this command accepts what its API accepts."""
    if config.net_allowlist_is_set():
        return
    allowlist = devenv.running_allowlist()
    if allowlist is None:
        return
    settings = current_app.extensions["beatra.settings"]
    current_app.extensions["beatra.settings"] = replace(settings, net_allowlist=allowlist)
    click.echo(f"(using the running `make run`'s {devenv.ALLOWLIST_ENV}={allowlist})", err=True)


@webhooks_cli.command("set", cls=OneLineCommand)
@account_option
@click.option("--url", required=True, help="HTTPS URL that receives task callbacks.")
@json_option
def webhooks_set(account_id: str, url: str, as_json: bool) -> None:
    """Set the endpoint; a new endpoint's signing secret is printed once."""
    _require_account(account_id)
    _apply_running_allowlist()
    try:
        saved = webhook_endpoints.save(account_id, url)
    except ApiError as exc:
        raise click.BadParameter(exc.message, param_hint="--url") from None
    data = {"account_id": account_id, "url": saved.endpoint.url, "secret": saved.secret}
    text = f"webhook endpoint for {account_id}: {saved.endpoint.url}"
    if saved.secret:
        text += f"\nsigning secret (shown once): {saved.secret}"
    else:
        text += "\n(existing signing secret kept; use rotate-secret for a new one)"
    _emit(as_json, data, text)


@webhooks_cli.command("show", cls=OneLineCommand)
@account_option
@json_option
def webhooks_show(account_id: str, as_json: bool) -> None:
    _require_account(account_id)
    endpoint = webhook_endpoints.get(account_id)
    if endpoint is None:
        raise click.ClickException(f"no webhook endpoint for {account_id}")
    view = {"account_id": account_id, **webhook_endpoints.public_view(endpoint)}
    view.pop("secret")
    reason = f" ({endpoint.disabled_reason})" if endpoint.disabled_reason else ""
    _emit(as_json, view, f"{account_id}: {endpoint.url} [{endpoint.status}{reason}]")


@webhooks_cli.command("rotate-secret", cls=OneLineCommand)
@account_option
@json_option
def webhooks_rotate(account_id: str, as_json: bool) -> None:
    _require_account(account_id)
    secret = webhook_endpoints.rotate(account_id)
    if secret is None:
        raise click.ClickException(f"no webhook endpoint for {account_id}")
    _emit(as_json, {"account_id": account_id, "secret": secret},
          f"new signing secret for {account_id} (shown once): {secret}")


@webhooks_cli.command("delete", cls=OneLineCommand)
@account_option
def webhooks_delete(account_id: str) -> None:
    _require_account(account_id)
    if not webhook_endpoints.remove(account_id):
        raise click.ClickException(f"no webhook endpoint for {account_id}")
    click.echo(f"deleted the webhook endpoint of {account_id}")


@credits_cli.command("grant", cls=OneLineCommand)
@account_option
@click.option("--amount", required=True, help="Credits to add (decimal, positive).")
@click.option("--reason", default="operator grant", help="Ledger note.")
def credits_grant(account_id: str, amount: str, reason: str) -> None:
    value = _amount(amount)
    _require_account(account_id)
    try:
        wallet.grant(account_id, value, reason=reason[:200])
    except AmountOutOfRange as exc:
        raise click.ClickException(f"{exc}; balance {fmt(wallet.balance(account_id))}") from None
    click.echo(f"granted {fmt(value)} credits to {account_id}; "
               f"balance {fmt(wallet.balance(account_id))}")


@credits_cli.command("show", cls=OneLineCommand)
@account_option
@click.option("--limit", default=20, type=click.IntRange(1, 1000), help="Ledger rows to show.")
@json_option
def credits_show(account_id: str, limit: int, as_json: bool) -> None:
    _require_account(account_id)
    bal = wallet.balance(account_id)
    entries = wallet.recent_entries(account_id, limit)
    rows = [
        {"id": e.id, "kind": e.kind, "amount": fmt(e.amount), "ref": e.ref, "reason": e.reason,
         "hold_id": e.hold_id, "request_id": e.request_id, "key_id": e.key_id,
         "created_at": isoformat(e.created_at)}
        for e in entries
    ]
    lines = [f"account {account_id} balance {fmt(bal)}"]
    lines += [f"  {r['created_at']}  {r['kind']:<8} {r['amount']:>16}  {r['ref'] or ''} "
              f"{r['reason'] or ''}".rstrip() for r in rows]
    _emit(as_json, {"account_id": account_id, "balance": fmt(bal), "ledger": rows},
          "\n".join(lines))


@credits_cli.command("holds", cls=OneLineCommand)
@click.option("--account", "account_id", default=None, help="Only this account's holds.")
@json_option
def credits_holds(account_id: str | None, as_json: bool) -> None:
    """Open holds (credits reserved for work in flight), oldest first."""
    if account_id is not None:
        _require_account(account_id)
    rows = [{"hold_id": h.id, "account_id": h.account_id, "amount": fmt(h.amount),
             "created_at": isoformat(h.created_at), "ref": h.ref, "kind": h.kind,
             "request_id": h.request_id,
             "lease_until": isoformat(h.lease_until) if h.lease_until else None}
            for h in wallet.open_holds(account_id)]
    lines = [f"{r['created_at']}  {r['hold_id']}  {r['account_id']}  {r['amount']:>14}  "
             f"{r['kind']:<4} {r['ref']}" for r in rows] or ["no open holds"]
    _emit(as_json, {"holds": rows}, "\n".join(lines))


@credits_cli.command("audit", cls=OneLineCommand)
def credits_audit() -> None:
    """Check balance == sum(ledger) for every wallet, and that no hold outlived its owner;
    exit 1 on any mismatch or stale hold."""
    bad = [a for a in wallet.audit_all() if not a.ok]
    for a in bad:
        click.echo(f"MISMATCH {a.account_id}: balance {fmt(a.balance)} != ledger "
                   f"{fmt(a.ledger_sum)}")
    stale = holds.stale_holds(current_app.extensions["beatra.settings"].task_sweep_seconds)
    for hold_id, why in stale:
        click.echo(f"STALE HOLD {hold_id}: {why}")
    bad_keys = [k for k in wallet.key_audits() if not k.ok]
    for k in bad_keys:
        click.echo(f"KEY MISMATCH {k.key_id}: spent {fmt(k.spent)} held {fmt(k.held)} != "
                   f"ledger captured {fmt(k.captured)} held {fmt(k.holding)}")
    if bad or stale or bad_keys:
        raise SystemExit(1)
    click.echo("ok: every balance equals the sum of its ledger; no stale holds")


def register(app: Flask) -> None:
    for group in (accounts_cli, keys_cli, credits_cli, webhooks_cli):
        app.cli.add_command(group)
