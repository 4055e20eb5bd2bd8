"""Self-checking API keys: a per-deployment key-check secret, and which keys carry a check

Keys made from now on end in a check (an HMAC under the secret made here), so a forged key is
refused without a database lookup. Keys that exist already are marked unchecked ("legacy"): they
keep working. The downgrade drops the secret; keys made meanwhile keep working after it, since
their whole value is hashed as before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KEY_CHECK_ROW = "api_key_check"


def upgrade() -> None:
    secrets_table = op.create_table(
        "deployment_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_deployment_secrets")),
    )
    op.bulk_insert(secrets_table, [{"name": KEY_CHECK_ROW, "value": secrets.token_urlsafe(32)}])
    # ADD COLUMN and DROP COLUMN in place on both databases (SQLite 3.35+): a rebuilt api_keys
    # table would have to be dropped while records refer to it.
    op.add_column(
        "api_keys",
        sa.Column("checked", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("api_keys", "checked")
    op.drop_table("deployment_secrets")
