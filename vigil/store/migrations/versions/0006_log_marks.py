"""Log marks: how far a follower of the event log has acted on it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Adds ``log_marks`` (name, seq, at): one row per follower of
``resource_events``, the ``seq`` of the last event it has acted on. The
OpenStack fault pusher keeps ``vim.push`` there, so a restart pushes again
the fault actions after it (a recovery's among them) that Nova may not have
taken.

Written by hand and frozen, like the revisions before it; it does not import
``vigil.store.schema``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "log_marks",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("log_marks")
