"""Operator commands: `flask --app beatra accounts|keys|credits …`.

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
from beatra.timeutil import isoformat


class _OneLineError(click.ClickException):
    """Printed as a single `Error: …` line (click's usage errors print the usage too)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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


accounts_cli = AppGroup("accounts", help="Manage accounts.")
keys_cli = AppGroup("keys", help="Issue and revoke API keys.")
credits_cli = AppGroup("credits", help="Grant and inspect credits.")


@accounts_cli.command("create", cls=OneLineCommand)
@click.option("--name", required=True, help="Account display name.")
@click.option("--credits", "credits_", default="0", help="Initial credits (decimal).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def accounts_create(name: str, credits_: str, as_json: bool) -> None:
    name = name.strip()
    if not name or len(name) > 200:
        raise click.BadParameter("must be 1-200 characters", param_hint="--name")
    amount = _amount(credits_, allow_zero=True)
    account = accounts.create_account(name, amount)
    _emit(as_json, {"account_id": account.id, "name": account.name, "balance": fmt(amount)},
          f"created account {account.id} ({account.name}) with {fmt(amount)} credits")


@keys_cli.command("create", cls=OneLineCommand)
@click.option("--account", "account_id", required=True, help="Account id (acct_…).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
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


@credits_cli.command("grant", cls=OneLineCommand)
@click.option("--account", "account_id", required=True, help="Account id (acct_…).")
@click.option("--amount", required=True, help="Credits to add (decimal, positive).")
@click.option("--reason", default="operator grant", help="Ledger note.")
def credits_grant(account_id: str, amount: str, reason: str) -> None:
    value = _amount(amount)
    _require_account(account_id)
    wallet.grant(account_id, value, reason=reason[:200])
    click.echo(f"granted {fmt(value)} credits to {account_id}; "
               f"balance {fmt(wallet.balance(account_id))}")


@credits_cli.command("show", cls=OneLineCommand)
@click.option("--account", "account_id", required=True, help="Account id (acct_…).")
@click.option("--limit", default=20, type=click.IntRange(1, 1000), help="Ledger rows to show.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
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
    for group in (accounts_cli, keys_cli, credits_cli):
        app.cli.add_command(group)
