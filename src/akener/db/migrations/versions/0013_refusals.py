"""refused requests per key, day and reason

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

Expand-only (docs/operations.md, "Upgrading a fleet"): one new table; an older akener neither
reads nor writes it. The usage flush writes it beside ``key_usage`` (akener.verify.usage), and
retention prunes it with the usage days (AKENER_RETENTION_USAGE).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_refusals",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_key_refusals_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", "day", "reason", name=op.f("pk_key_refusals")),
    )
    op.create_index("ix_key_refusals_day", "key_refusals", ["day"])
    op.create_index("ix_key_refusals_day_reason_count", "key_refusals", ["day", "reason", "count"])


def downgrade() -> None:
    op.drop_index("ix_key_refusals_day_reason_count", table_name="key_refusals")
    op.drop_index("ix_key_refusals_day", table_name="key_refusals")
    op.drop_table("key_refusals")
