"""holds as first-class records; ledger rows say which hold, key, capability and model

Every reservation gets a server-generated hold id (holds table). A chat hold carries a lease
its live request renews; a hold whose lease ran out is settled by the sweeper. Ledger rows gain
the hold id, the API key and the request id that caused them, the capability and model, and
token counts on captures, so usage can be summed per key, model and day.

Existing reserves that were never released or refunded become open holds: task holds stay with
their task, other (chat) holds get an expired lease so the sweeper releases them.

Revision ID: 0007
Revises: 0006
"""
from collections import defaultdict
from datetime import datetime, timezone
import os
import time

from alembic import op
import sqlalchemy as sa

from beatra.billing.money import Credits

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TERMINAL = ("succeeded", "failed", "canceled")


def _hold_id() -> str:
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "hold_" + "".join(reversed(chars))


def upgrade():
    op.create_table(
        'holds',
        sa.Column('id', sa.String(40), primary_key=True),
        sa.Column('account_id', sa.String(40), sa.ForeignKey('accounts.id'), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('amount', Credits(), nullable=False),
        sa.Column('ref', sa.String(80), nullable=False),
        sa.Column('request_id', sa.String(128), nullable=True),
        sa.Column('key_id', sa.String(40), nullable=True),
        sa.Column('capability', sa.String(40), nullable=True),
        sa.Column('model', sa.String(80), nullable=True),
        sa.Column('accrued', Credits(), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_holds_ref', 'holds', ['ref'])
    op.create_index('ix_holds_open_lease', 'holds', ['settled_at', 'lease_until'])
    op.create_index('ix_holds_account', 'holds', ['account_id', 'settled_at'])
    with op.batch_alter_table('ledger_entries', schema=None) as batch:
        batch.add_column(sa.Column('hold_id', sa.String(40), nullable=True))
        batch.add_column(sa.Column('key_id', sa.String(40), nullable=True))
        batch.add_column(sa.Column('request_id', sa.String(128), nullable=True))
        batch.add_column(sa.Column('capability', sa.String(40), nullable=True))
        batch.add_column(sa.Column('model', sa.String(80), nullable=True))
        batch.add_column(sa.Column('input_tokens', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('output_tokens', sa.BigInteger(), nullable=True))
    op.create_index('ix_ledger_entries_hold_id', 'ledger_entries', ['hold_id'])
    _adopt_open_reserves()


def _adopt_open_reserves():
    """Reserves with no matching release/refund become holds (see the module docstring)."""
    bind = op.get_bind()
    ledger = sa.table('ledger_entries', sa.column('id', _BigId), sa.column('account_id'),
                      sa.column('kind'), sa.column('amount', Credits()), sa.column('ref'),
                      sa.column('created_at', sa.DateTime(timezone=True)))
    tasks = sa.table('tasks', sa.column('id'), sa.column('status'), sa.column('capability'),
                     sa.column('resolved_model'), sa.column('request_id'))
    rows = bind.execute(sa.select(ledger.c.id, ledger.c.account_id, ledger.c.kind,
                                  ledger.c.amount, ledger.c.ref, ledger.c.created_at)
                        .where(ledger.c.kind.in_(("reserve", "release", "refund")))
                        .order_by(ledger.c.id)).all()
    reserves = defaultdict(list)
    closed = defaultdict(int)
    for row in rows:
        key = (row.account_id, row.ref)
        if row.kind == "reserve":
            reserves[key].append(row)
        else:
            closed[key] += 1
    task_rows = {t.id: t for t in bind.execute(sa.select(tasks)).all()}
    now = datetime.now(timezone.utc)
    holds = sa.table('holds', *(sa.column(c) for c in (
        'id', 'account_id', 'kind', 'ref', 'request_id', 'capability', 'model',
        'lease_until', 'created_at')), sa.column('amount', Credits()),
        sa.column('accrued', Credits()))
    new = []
    for (account_id, ref), opened in reserves.items():
        for row in opened[closed[(account_id, ref)]:]:
            task = task_rows.get(ref)
            if task is not None and task.status in _TERMINAL:
                continue  # a task ended with no wallet movement (zero hold): nothing is held
            new.append({
                "id": _hold_id(), "account_id": account_id, "amount": -row.amount,
                "accrued": 0, "ref": ref or "", "created_at": row.created_at or now,
                "kind": "task" if task is not None else "chat",
                "request_id": task.request_id if task is not None else ref,
                "capability": task.capability if task is not None else "chat.completions",
                "model": task.resolved_model if task is not None else None,
                "lease_until": None if task is not None else now,
            })
    if new:
        op.bulk_insert(holds, new)


def downgrade():
    op.drop_index('ix_ledger_entries_hold_id', table_name='ledger_entries')
    with op.batch_alter_table('ledger_entries', schema=None) as batch:
        for name in ('output_tokens', 'input_tokens', 'model', 'capability', 'request_id',
                     'key_id', 'hold_id'):
            batch.drop_column(name)
    op.drop_index('ix_holds_account', table_name='holds')
    op.drop_index('ix_holds_open_lease', table_name='holds')
    op.drop_index('ix_holds_ref', table_name='holds')
    op.drop_table('holds')
