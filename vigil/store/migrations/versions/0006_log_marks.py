"""Log marks: how far a follower of the event log has acted on it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Adds ``log_marks`` (name, seq, at): one row per follower of
``resource_events``, the ``seq`` of the last event it has acted on. The
OpenStack fault pusher keeps ``vim.push`` there, so a restart pushes again
the fault actions after it (a recovery's among them) that Nova may not have
taken. A database that already has events starts that mark at their end:
the code before this revision acted on them, and a first start must not
push every retained event again.

Written by hand and frozen, like the revisions before it; it does not import
``vigil.store.schema``.
"""

from datetime import UTC, datetime

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
    last = op.get_bind().scalar(sa.text("SELECT max(seq) FROM resource_events"))
    if last is not None:
        marks = sa.table(
            "log_marks",
            sa.column("name", sa.String()),
            sa.column("seq", sa.BigInteger()),
            sa.column("at", sa.DateTime(timezone=True)),
        )
        op.bulk_insert(marks, [{"name": "vim.push", "seq": last, "at": datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table("log_marks")
