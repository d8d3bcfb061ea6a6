"""The alarm as its monitor names and grades it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

Adds ``fault_events.alarm`` (a JSON object, ``{}`` for the rows before):
the reported alarm as the monitor itself named and graded it (``name``,
``rawtext``, ``severity``: a Zabbix trigger's name, unexpanded name and
priority name; a Prometheus alert's alertname), which rule templates in
Vitrage's format match alarms by. Events recorded before have none and are
matched by their event type, as before.

Written by hand and frozen, like the revisions before it; it does not import
``vigil.store.schema``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("fault_events", sa.Column("alarm", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table("fault_events") as batch:
        batch.drop_column("alarm")
