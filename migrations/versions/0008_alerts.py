"""Alerts from Alertmanager and Grafana: their groups, the alerts, and their timeline entries.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.db.types import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("playbook", sa.String(length=100), nullable=False),
        sa.Column("route", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("declare", sa.String(length=8), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("asked_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index(
        op.f("ix_alert_group_incident_id"), "alert_group", ["incident_id"], unique=False
    )
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("annotations", sa.Text(), nullable=False),
        sa.Column("links", sa.Text(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("fired_recorded", sa.Boolean(), nullable=False),
        sa.Column("resolved_recorded", sa.Boolean(), nullable=False),
        sa.Column("fired_told", sa.Boolean(), nullable=False),
        sa.Column("resolved_told", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["alert_group.id"]),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("identity"),
    )
    op.create_index(op.f("ix_alert_group_id"), "alert", ["group_id"], unique=False)
    op.create_index(op.f("ix_alert_incident_id"), "alert", ["incident_id"], unique=False)
    with op.batch_alter_table("timeline_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alert_group", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("timeline_entry", schema=None) as batch_op:
        batch_op.drop_column("alert_group")
    op.drop_index(op.f("ix_alert_incident_id"), table_name="alert")
    op.drop_index(op.f("ix_alert_group_id"), table_name="alert")
    op.drop_table("alert")
    op.drop_index(op.f("ix_alert_group_incident_id"), table_name="alert_group")
    op.drop_table("alert_group")
