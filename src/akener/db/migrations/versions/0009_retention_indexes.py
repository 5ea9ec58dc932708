"""indexes the retention job prunes by

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-03

Expand-only (docs/operations.md, "Upgrading a fleet"): new indexes, nothing an older akener
reads is changed or dropped.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_key_usage_day", "key_usage", ["day"])
    op.create_index("ix_web_sessions_expires_at", "web_sessions", ["expires_at"])
    op.create_index("ix_login_failures_at", "login_failures", ["at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_at", table_name="login_failures")
    op.drop_index("ix_web_sessions_expires_at", table_name="web_sessions")
    op.drop_index("ix_key_usage_day", table_name="key_usage")
