"""key expiry and rotation with a grace period

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import akener.db.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_at", akener.db.base.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("previous_digest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("previous_pepper_version", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("previous_valid_until", akener.db.base.UTCDateTime(), nullable=True)
        )
        batch.add_column(sa.Column("rotated_at", akener.db.base.UTCDateTime(), nullable=True))
        batch.create_unique_constraint(op.f("uq_api_keys_previous_digest"), ["previous_digest"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint(op.f("uq_api_keys_previous_digest"), type_="unique")
        for column in (
            "rotated_at",
            "previous_valid_until",
            "previous_pepper_version",
            "previous_digest",
            "expires_at",
        ):
            batch.drop_column(column)
