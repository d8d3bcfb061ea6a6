"""The initial schema: resource tables and the event log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written by hand and frozen: later schema changes get their own revision
rather than editing this one. It deliberately does not import
``vigil.store.schema`` (which describes only the newest schema).
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "switches",
        sa.Column("name", sa.String(), primary_key=True),
    )
    op.create_table(
        "hosts",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("zone", sa.String(), nullable=False),
        sa.Column("switch", sa.String(), nullable=True),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("admin_state", sa.String(), nullable=False),
        sa.Column("forced_down", sa.Boolean(), nullable=False),
        sa.Column("reachable", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(), nullable=True),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
    )
    op.create_table(
        "server_groups",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("policy", sa.String(), nullable=False),
    )
    op.create_table(
        "instances",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=True),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("group", sa.String(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("migrating_to", sa.String(), nullable=True),
    )
    op.create_table(
        "ports",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("instance", sa.String(), nullable=False),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=True),
        sa.Column("network", sa.String(), nullable=False),
        sa.Column("data_plane_status", sa.String(), nullable=False),
    )
    op.create_table(
        "resource_events",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resource_type", sa.String(), nullable=False),
        sa.Column("resource_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("project", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
    )
    op.create_index("ix_resource_events_resource", "resource_events", ["resource_type", "resource_id"])
    op.create_index("ix_resource_events_project", "resource_events", ["project"])


def downgrade() -> None:
    op.drop_index("ix_resource_events_project", table_name="resource_events")
    op.drop_index("ix_resource_events_resource", table_name="resource_events")
    for table in ("resource_events", "ports", "instances", "server_groups", "projects", "hosts", "switches"):
        op.drop_table(table)
