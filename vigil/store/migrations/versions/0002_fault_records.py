"""Fault management: host maintenance flag, group alarm threshold, and record tables.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01

Adds ``hosts.in_maintenance`` and ``server_groups.alarm_threshold`` (existing
rows get the dataclasses' defaults, false and 1, through server defaults),
and the tables of the records a change batch carries besides resources:
``fault_events``, ``faults``, ``alarms``, ``subscriptions`` and
``deliveries``. Plain ``ADD COLUMN`` with a constant default works on SQLite
too, so no batch (table copy) mode is needed.

Written by hand and frozen, like ``0001``; it does not import
``vigil.store.schema``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("hosts", sa.Column("in_maintenance", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("server_groups", sa.Column("alarm_threshold", sa.Integer(), nullable=False, server_default="1"))

    op.create_table(
        "fault_events",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("hostname", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("monitor", sa.String(), nullable=False),
        sa.Column("monitor_event_id", sa.String(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("severity", sa.String(), nullable=True),
        sa.Column("cause", sa.String(), nullable=True),
        sa.Column("related_to", sa.String(), nullable=True),
        sa.Column("injected_at", sa.Double(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("fault", sa.String(), nullable=True),
    )
    op.create_index("ix_fault_events_monitor", "fault_events", ["monitor", "monitor_event_id"])
    op.create_index("ix_fault_events_received_at", "fault_events", ["received_at"])

    op.create_table(
        "faults",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("resource_type", sa.String(), nullable=False),
        sa.Column("resource_id", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("instances", sa.JSON(), nullable=False),
        sa.Column("checkpoints", sa.JSON(), nullable=False),
    )
    op.create_index("ix_faults_state", "faults", ["state"])

    op.create_table(
        "alarms",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("project", sa.String(), nullable=True),
        sa.Column("resource_type", sa.String(), nullable=False),
        sa.Column("resource_id", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("ack_state", sa.String(), nullable=False),
        sa.Column("fault", sa.String(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("resource_ids", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
    )
    op.create_index("ix_alarms_project", "alarms", ["project"])
    op.create_index("ix_alarms_fault", "alarms", ["fault"])
    op.create_index("ix_alarms_state", "alarms", ["state"])

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("callbacks", sa.JSON(), nullable=False),
        sa.Column("format", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
    )

    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("notification", sa.String(), nullable=False),
        sa.Column("subscription", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("alarm", sa.String(), nullable=False),
        sa.Column("alarm_version", sa.Integer(), nullable=False),
        sa.Column("lifecycle", sa.String(), nullable=False),
        sa.Column("project", sa.String(), nullable=True),
        sa.Column("fault", sa.String(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
    )
    op.create_index("ix_deliveries_state", "deliveries", ["state"])
    op.create_index("ix_deliveries_subscription", "deliveries", ["subscription"])
    op.create_index("ix_deliveries_fault", "deliveries", ["fault"])
    op.create_index("ix_deliveries_created_at", "deliveries", ["created_at", "id"])


def downgrade() -> None:
    for table in ("deliveries", "subscriptions", "alarms", "faults", "fault_events"):
        op.drop_table(table)  # drops the table's indexes with it
    with op.batch_alter_table("server_groups") as batch:
        batch.drop_column("alarm_threshold")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("in_maintenance")
