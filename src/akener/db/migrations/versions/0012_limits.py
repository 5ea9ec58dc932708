"""key limits: rate-limit windows, credits, address allowlist, owner id; the owners table

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

Expand-only (docs/operations.md, "Upgrading a fleet"): new nullable or defaulted columns and a
new table; an older akener ignores them (and so enforces no limits).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from akener.db.base import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _credit_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("credits_remaining", sa.BigInteger(), nullable=True),
        sa.Column("credits_refill_amount", sa.BigInteger(), nullable=True),
        sa.Column("credits_refill_interval", sa.String(8), nullable=True),
        sa.Column("credits_refilled_at", UTCDateTime(), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("owner_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("rate_limits", sa.JSON(), server_default="[]", nullable=False))
        batch.add_column(sa.Column("allowed_ips", sa.JSON(), server_default="[]", nullable=False))
        for column in _credit_columns():
            batch.add_column(column)
        batch.create_index("ix_api_keys_owner_id", ["owner_id"])
    op.create_table(
        "owners",
        sa.Column("owner_id", sa.String(128), nullable=False),
        sa.Column("rate_limits", sa.JSON(), server_default="[]", nullable=False),
        *_credit_columns(),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", name=op.f("pk_owners")),
    )


def downgrade() -> None:
    op.drop_table("owners")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_owner_id")
        for name in (
            "credits_refilled_at",
            "credits_refill_interval",
            "credits_refill_amount",
            "credits_remaining",
            "allowed_ips",
            "rate_limits",
            "owner_id",
        ):
            batch.drop_column(name)
