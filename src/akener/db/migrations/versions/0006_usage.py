"""key usage counts and the key change sequence

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("request_count", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.create_table(
        "key_usage",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_key_usage_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", "day", name=op.f("pk_key_usage")),
    )
    change_seq = op.create_table(
        "key_change_seq",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_change_seq")),
    )
    op.bulk_insert(change_seq, [{"id": 1, "seq": 0}])


def downgrade() -> None:
    op.drop_table("key_change_seq")
    op.drop_table("key_usage")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("request_count")
