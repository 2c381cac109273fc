"""Side-effect outbox, and the channel topic as last set.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 14:14:35.416063
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db.types

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('side_effect',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', bot.db.types.UTCDateTime(), nullable=False),
    sa.Column('due_at', bot.db.types.UTCDateTime(), nullable=False),
    sa.Column('claimed_until', bot.db.types.UTCDateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('done_at', bot.db.types.UTCDateTime(), nullable=True),
    sa.Column('failed', sa.Boolean(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incident.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('side_effect', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_side_effect_done_at'), ['done_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_side_effect_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_side_effect_incident_id'), ['incident_id'], unique=False)

    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.add_column(sa.Column("topic", sa.String(length=250), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_column("topic")
    with op.batch_alter_table('side_effect', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_side_effect_incident_id'))
        batch_op.drop_index(batch_op.f('ix_side_effect_due_at'))
        batch_op.drop_index(batch_op.f('ix_side_effect_done_at'))

    op.drop_table('side_effect')
