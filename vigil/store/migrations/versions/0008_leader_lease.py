"""The leader's lease: when it expires.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Adds ``store_lease.expires_at`` (nullable): with high availability
(``ha.enabled``, PostgreSQL) the leader renews it, a standby takes the
lease once it has passed, and every write checks it with the ``epoch``
(``vigil.store.leader``). The single writer of a store without high
availability keeps its lock as before and leaves it empty.

Written by hand and frozen, like the revisions before it; it does not import
``vigil.store.schema``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("store_lease", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("store_lease") as batch:
        batch.drop_column("expires_at")
