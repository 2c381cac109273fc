"""A follow-up remembers its issue in the team's tracker (GitHub Issues or Jira).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("follow_up", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tracker", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("issue_marker", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("issue_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("issue_key", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("issue_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("issue_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("issue_error", sa.Text(), nullable=True))
    op.create_index("ix_follow_up_issue_marker", "follow_up", ["issue_marker"])
    op.create_index("ix_follow_up_issue_id", "follow_up", ["issue_id"])


def downgrade() -> None:
    op.drop_index("ix_follow_up_issue_id", table_name="follow_up")
    op.drop_index("ix_follow_up_issue_marker", table_name="follow_up")
    with op.batch_alter_table("follow_up", schema=None) as batch_op:
        for column in (
            "issue_error",
            "issue_state",
            "issue_url",
            "issue_key",
            "issue_id",
            "issue_marker",
            "tracker",
        ):
            batch_op.drop_column(column)
