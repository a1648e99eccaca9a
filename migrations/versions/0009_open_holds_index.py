"""one partial index over open holds; the ledger's hold_id index goes

Every chat call writes a hold and three ledger rows and closes the hold; each index on those
rows is written with them. The three indexes on holds (ref; settled_at + lease_until;
account_id + settled_at) served only queries over *open* holds (a task's open hold, an
account's or key's open holds, the reaper's expired leases, the open-holds gauge), so one
partial index on open holds serves them all: a hold enters it when reserved and leaves it
when settled, and a lease renewal no longer touches an index. `ledger_entries.hold_id` was
indexed but never queried (a hold's rows are found by `ref`, which for a chat hold is the hold
id and for a task hold the task id).

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_OPEN = sa.text('settled_at IS NULL')


def upgrade():
    op.drop_index('ix_holds_ref', table_name='holds')
    op.drop_index('ix_holds_open_lease', table_name='holds')
    op.drop_index('ix_holds_account', table_name='holds')
    op.create_index('ix_holds_open', 'holds', ['account_id', 'ref'],
                    sqlite_where=_OPEN, postgresql_where=_OPEN)
    op.drop_index('ix_ledger_entries_hold_id', table_name='ledger_entries')


def downgrade():
    op.create_index('ix_ledger_entries_hold_id', 'ledger_entries', ['hold_id'])
    op.drop_index('ix_holds_open', table_name='holds')
    op.create_index('ix_holds_account', 'holds', ['account_id', 'settled_at'])
    op.create_index('ix_holds_open_lease', 'holds', ['settled_at', 'lease_until'])
    op.create_index('ix_holds_ref', 'holds', ['ref'])
