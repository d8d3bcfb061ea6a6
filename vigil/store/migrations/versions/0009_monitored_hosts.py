"""The hosts the heartbeat monitor watches.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Adds ``monitored_hosts`` (host, interval_ms, mult, since): each host the
heartbeat monitor has heard from, with the timing it beats at. After a
restart or a takeover each is expected to beat again, so a host that died
while Vigil was down is declared lost instead of waiting, never heard from,
as a host without an agent does. A database upgraded from before starts
with none: the monitor learns them from the next heartbeats.

Written by hand and frozen, like the revisions before it; it does not import
``vigil.store.schema``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "monitored_hosts",
        sa.Column("host", sa.String(), primary_key=True),
        sa.Column("interval_ms", sa.Double(), nullable=False),
        sa.Column("mult", sa.BigInteger(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("monitored_hosts")
