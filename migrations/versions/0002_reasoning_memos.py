"""reasoning memos for tool-call turns

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('reasoning_memos',
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('tool_call_id', sa.String(length=128), nullable=False),
    sa.Column('reasoning_content', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('account_id', 'tool_call_id')
    )
    with op.batch_alter_table('reasoning_memos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reasoning_memos_created_at'), ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('reasoning_memos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reasoning_memos_created_at'))
    op.drop_table('reasoning_memos')
