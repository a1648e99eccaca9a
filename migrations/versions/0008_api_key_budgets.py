"""API key names, expiry, last use, and per-key credit limits with spent/held counters

`spent` (what the ledger captured for the key) and `held` (its open holds) are counters kept by
beatra.billing.wallet in the same transaction as each wallet movement, so a key's credit limit
is enforced by one conditional UPDATE, like the account balance. Existing rows are backfilled
from the ledger and the open holds. An index serves GET /v1/usage (captures per account and
time).

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

from beatra.billing.money import Credits

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_keys', schema=None) as batch:
        batch.add_column(sa.Column('name', sa.String(200), nullable=True))
        batch.add_column(sa.Column('credit_limit', Credits(), nullable=True))
        batch.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('spent', Credits(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('held', Credits(), nullable=False, server_default='0'))
    op.create_index('ix_ledger_usage', 'ledger_entries', ['account_id', 'kind', 'created_at'])
    _backfill()


def _backfill():
    bind = op.get_bind()
    keys = sa.table('api_keys', sa.column('id'), sa.column('spent', Credits()),
                    sa.column('held', Credits()))
    ledger = sa.table('ledger_entries', sa.column('key_id'), sa.column('kind'),
                      sa.column('amount', Credits()))
    holds = sa.table('holds', sa.column('key_id'), sa.column('amount', Credits()),
                     sa.column('settled_at'))
    spent = bind.execute(
        sa.select(ledger.c.key_id, sa.func.sum(ledger.c.amount).label('total'))
        .where(ledger.c.kind == 'capture', ledger.c.key_id.is_not(None))
        .group_by(ledger.c.key_id)).all()
    held = bind.execute(
        sa.select(holds.c.key_id, sa.func.sum(holds.c.amount).label('total'))
        .where(holds.c.settled_at.is_(None), holds.c.key_id.is_not(None))
        .group_by(holds.c.key_id)).all()
    for row in spent:
        bind.execute(sa.update(keys).where(keys.c.id == row.key_id).values(spent=-row.total))
    for row in held:
        bind.execute(sa.update(keys).where(keys.c.id == row.key_id).values(held=row.total))


def downgrade():
    op.drop_index('ix_ledger_usage', table_name='ledger_entries')
    with op.batch_alter_table('api_keys', schema=None) as batch:
        for name in ('held', 'spent', 'last_used_at', 'expires_at', 'credit_limit', 'name'):
            batch.drop_column(name)
