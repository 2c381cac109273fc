"""Initial schema: incidents, their timeline, roles, pages, follow-ups, processed events.

Revision ID: 0001
Revises:
Create Date: 2025-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("playbook", sa.String(length=100), nullable=True),
        sa.Column("service", sa.String(length=100), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=True),
        sa.Column("channel_name", sa.String(length=80), nullable=True),
        sa.Column("card_ts", sa.String(length=32), nullable=True),
        sa.Column("declared_by", sa.String(length=32), nullable=False),
        sa.Column("declared_at", bot.db.types.UTCDateTime(), nullable=False),
        sa.Column("started_at", bot.db.types.UTCDateTime(), nullable=True),
        sa.Column("resolved_at", bot.db.types.UTCDateTime(), nullable=True),
        sa.Column("impact", sa.Text(), nullable=True),
        sa.Column("root_cause", sa.Text(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        # Unnamed, as in the models: PostgreSQL calls them incident_number_key and
        # incident_channel_id_key.
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("channel_id"),
    )

    op.create_table(
        "timeline_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", bot.db.types.UTCDateTime(), nullable=False),
        sa.Column("recorded_at", bot.db.types.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("slack_channel", sa.String(length=32), nullable=True),
        sa.Column("slack_ts", sa.String(length=32), nullable=True),
        sa.Column("permalink", sa.String(length=500), nullable=True),
        sa.Column("retracted_at", bot.db.types.UTCDateTime(), nullable=True),
        sa.Column("retracted_by", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "source", "slack_ts", name="uq_timeline_message"),
    )
    op.create_index("ix_timeline_entry_incident_id", "timeline_entry", ["incident_id"])
    op.create_index("ix_timeline_entry_occurred_at", "timeline_entry", ["occurred_at"])

    op.create_table(
        "role_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("assigned_by", sa.String(length=32), nullable=True),
        sa.Column("assigned_at", bot.db.types.UTCDateTime(), nullable=False),
        sa.Column("ended_at", bot.db.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_role_assignment_incident_id", "role_assignment", ["incident_id"])

    op.create_table(
        "page",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=True),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", bot.db.types.UTCDateTime(), nullable=False),
        sa.Column("escalate_at", bot.db.types.UTCDateTime(), nullable=True),
        sa.Column("acknowledged_at", bot.db.types.UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_page_incident_id", "page", ["incident_id"])
    op.create_index("ix_page_dedup_key", "page", ["dedup_key"])

    op.create_table(
        "follow_up",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=True),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", bot.db.types.UTCDateTime(), nullable=False),
        sa.Column("done_at", bot.db.types.UTCDateTime(), nullable=True),
        sa.Column("removed_at", bot.db.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_follow_up_incident_id", "follow_up", ["incident_id"])

    op.create_table(
        "processed_event",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", bot.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )


def downgrade() -> None:
    # Children before the incident table they point at; dropping a table drops its indexes.
    op.drop_table("processed_event")
    op.drop_table("follow_up")
    op.drop_table("page")
    op.drop_table("role_assignment")
    op.drop_table("timeline_entry")
    op.drop_table("incident")
