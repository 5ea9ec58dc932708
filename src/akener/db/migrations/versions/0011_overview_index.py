"""a covering index for the overview's traffic across keys

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

Expand-only (docs/operations.md, "Upgrading a fleet"): one new index, nothing an older akener
reads is changed or dropped. The overview sums requests per day and per key over 30 and 90
days; with (day, key_id, count) in one index those sums read the index alone. Measured with
bench/dashboard_pages.py's data (100,000 keys, 300,000 usage rows, SQLite): 90 days per day
366 ms -> 33 ms, busiest keys over 30 days 198 ms -> 54 ms.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_key_usage_day_key_count", "key_usage", ["day", "key_id", "count"])


def downgrade() -> None:
    op.drop_index("ix_key_usage_day_key_count", table_name="key_usage")
