"""Subscriptions: how Vigil authenticates to their callbacks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Adds ``subscriptions.authentication``: SOL 003's ``SubscriptionAuthentication``
(BASIC, or OAuth 2.0 client credentials with its token endpoint), the secret
included, as one JSON object; NULL for a subscription without. Credentials
no longer travel inside callback URLs.

Written by hand and frozen, like the revisions before it; it does not import
``vigil.store.schema``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("subscriptions", sa.Column("authentication", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("authentication")
