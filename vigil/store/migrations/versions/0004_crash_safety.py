"""Crash safety: the writer's lease, the report journal's order, the inspector's host memory.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

* ``store_lease``: one row, ``writer``, naming the process that holds the
  store's writer lease (host, pid, since) and the lease's ``epoch``, which
  grows by one at every taking (``vigil.store.lease``).
* ``fault_events.seq``: the journal's order of the southbound reports; rows
  recorded before there was a journal keep NULL. An index on ``outcome``
  finds the journal's unapplied tail at start.
* ``host_findings``: what the inspector remembers of a host between reports
  (aggregated failures, reports suppressed in maintenance, held recoveries).
* ``deliveries.retry_since``: when an admin asked to send a given-up delivery
  again (its retries' horizon starts there).
* Every integer column becomes 64-bit, so whatever the API accepts fits
  (PostgreSQL's INTEGER is 32-bit; SQLite's INTEGER is 64-bit already, and
  its tables are rebuilt only to match the declared type).

Written by hand and frozen, like the revisions before it; it does not import
``vigil.store.schema``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


# The integer columns of revisions 0001 to 0003.
INTEGERS = {
    "hosts": ["vcpus"],
    "server_groups": ["alarm_threshold"],
    "instances": ["vcpus"],
    "alarms": ["version"],
    "deliveries": ["alarm_version", "attempts", "last_status"],
    "maintenance_sessions": ["migrations"],
    "group_constraints": ["max_instances_per_host", "max_impacted_members"],
}


def upgrade() -> None:
    for table, columns in INTEGERS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, type_=sa.BigInteger(), existing_type=sa.Integer())
    op.create_table(
        "store_lease",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.BigInteger(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
    )
    op.add_column("fault_events", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.add_column("deliveries", sa.Column("retry_since", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_fault_events_seq", "fault_events", ["seq"], unique=True)
    op.create_index("ix_fault_events_outcome", "fault_events", ["outcome"])
    op.create_table(
        "host_findings",
        sa.Column("host", sa.String(), primary_key=True),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.Column("suppressed", sa.JSON(), nullable=False),
        sa.Column("held", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("host_findings")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("retry_since")
    op.drop_index("ix_fault_events_outcome", table_name="fault_events")
    op.drop_index("ix_fault_events_seq", table_name="fault_events")
    with op.batch_alter_table("fault_events") as batch:
        batch.drop_column("seq")
    op.drop_table("store_lease")
    for table, columns in INTEGERS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, type_=sa.Integer(), existing_type=sa.BigInteger())
