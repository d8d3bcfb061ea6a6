"""Maintenance: sessions, instance constraints and instance-group constraints.

Revision ID: 0003
Revises: 0002
Create Date: 2025-03-01

Adds the tables of the maintenance records a change batch carries:
``maintenance_sessions`` (the session's per-host and per-project progress
are JSON objects keyed by host name and by project), ``instance_constraints``
and ``group_constraints`` (FEAT03). Only new tables: existing rows are
untouched.

Written by hand and frozen, like ``0001`` and ``0002``; it does not import
``vigil.store.schema``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "maintenance_sessions",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("maintenance_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("workflow", sa.String(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("migrations", sa.Integer(), nullable=False),
        sa.Column("host_progress", sa.JSON(), nullable=False),
        sa.Column("projects", sa.JSON(), nullable=False),
    )
    op.create_index("ix_maintenance_sessions_state", "maintenance_sessions", ["state"])
    op.create_index("ix_maintenance_sessions_created_at", "maintenance_sessions", ["created_at", "id"])

    op.create_table(
        "instance_constraints",
        sa.Column("instance_id", sa.String(), primary_key=True),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("group_id", sa.String(), nullable=True),
        sa.Column("max_interruption_time", sa.Double(), nullable=False),
        sa.Column("migration_type", sa.String(), nullable=False),
        sa.Column("resource_mitigation", sa.Boolean(), nullable=False),
        sa.Column("lead_time", sa.Double(), nullable=False),
    )
    op.create_index("ix_instance_constraints_project", "instance_constraints", ["project"])
    op.create_index("ix_instance_constraints_group_id", "instance_constraints", ["group_id"])

    op.create_table(
        "group_constraints",
        sa.Column("group_id", sa.String(), primary_key=True),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("anti_affinity_group", sa.Boolean(), nullable=False),
        sa.Column("max_instances_per_host", sa.Integer(), nullable=False),
        sa.Column("max_impacted_members", sa.Integer(), nullable=False),
        sa.Column("recovery_time", sa.Double(), nullable=False),
    )
    op.create_index("ix_group_constraints_project", "group_constraints", ["project"])


def downgrade() -> None:
    for table in ("group_constraints", "instance_constraints", "maintenance_sessions"):
        op.drop_table(table)  # drops the table's indexes with it
