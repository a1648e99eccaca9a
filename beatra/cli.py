"""Operator commands: `flask --app beatra accounts|keys|credits|webhooks …`.

These exact forms are a public interface (README documents them; automation relies on them).
Bad arguments exit non-zero with a one-line message and write nothing.
"""

from __future__ import annotations

from decimal import Decimal

import click
import orjson
from flask import Flask
from flask.cli import AppGroup

from beatra.accounts import service as accounts
from beatra.billing import wallet
from beatra.billing.money import fmt, parse_credits
from beatra.errors import ApiError
from beatra.timeutil import isoformat
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


@keys_cli.command("create", cls=OneLineCommand)
@account_option
@json_option
def keys_create(account_id: str, as_json: bool) -> None:
    _require_account(account_id)
    key, secret = accounts.create_key(account_id)
    _emit(as_json, {"key_id": key.id, "account_id": account_id, "api_key": secret},
          f"created key {key.id} for {account_id}\napi key (shown once): {secret}")


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


@webhooks_cli.command("set", cls=OneLineCommand)
@account_option
@click.option("--url", required=True, help="HTTPS URL that receives task callbacks.")
@json_option
def webhooks_set(account_id: str, url: str, as_json: bool) -> None:
    """Set the endpoint; a new endpoint's signing secret is printed once."""
    _require_account(account_id)
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
    wallet.grant(account_id, value, reason=reason[:200])
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
         "created_at": isoformat(e.created_at)}
        for e in entries
    ]
    lines = [f"account {account_id} balance {fmt(bal)}"]
    lines += [f"  {r['created_at']}  {r['kind']:<8} {r['amount']:>16}  {r['ref'] or ''} "
              f"{r['reason'] or ''}".rstrip() for r in rows]
    _emit(as_json, {"account_id": account_id, "balance": fmt(bal), "ledger": rows},
          "\n".join(lines))


@credits_cli.command("audit", cls=OneLineCommand)
def credits_audit() -> None:
    """Check balance == sum(ledger) for every wallet; exit 1 on any mismatch."""
    bad = [a for a in wallet.audit_all() if not a.ok]
    for a in bad:
        click.echo(f"MISMATCH {a.account_id}: balance {fmt(a.balance)} != ledger "
                   f"{fmt(a.ledger_sum)}")
    if bad:
        raise SystemExit(1)
    click.echo("ok: every balance equals the sum of its ledger")


def register(app: Flask) -> None:
    for group in (accounts_cli, keys_cli, credits_cli, webhooks_cli):
        app.cli.add_command(group)
