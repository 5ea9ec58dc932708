"""accounts: users, roles, user_roles, web_sessions, login_failures; built-in roles

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import akener.db.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copy of the built-in roles at this revision; the code's definition is authoritative.
_READS = ["api_keys.read", "users.read", "roles.read", "audit.read"]
_BUILTIN = [
    ("admin", "Everything, including deleting keys and managing users and roles.", ["*"]),
    (
        "editor",
        "Everything except deleting keys and managing users and roles.",
        [
            "api_keys.read",
            "api_keys.write",
            "api_keys.verify",
            "users.read",
            "roles.read",
            "audit.read",
        ],
    ),
    ("member", "Read-only: sees keys, users and roles, changes nothing.", _READS),
]


def upgrade() -> None:
    roles = op.create_table(
        "roles",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("permissions", sa.JSON(), nullable=False),
        sa.Column("created_at", akener.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roles")),
        sa.UniqueConstraint("name", name=op.f("uq_roles_name")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("owner_flag", sa.Boolean(), nullable=True),
        sa.Column("created_at", akener.db.base.UTCDateTime(), nullable=False),
        sa.Column("last_login_at", akener.db.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("owner_flag", name=op.f("uq_users_owner_flag")),
    )
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("role_id", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_roles_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_user_roles_role_id_roles"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("user_id", "role_id", name=op.f("pk_user_roles")),
    )
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("token_digest", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", akener.db.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", akener.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_web_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_web_sessions_token_digest")),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", akener.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_email_at", "login_failures", ["email", "at"])
    op.create_index("ix_login_failures_address_at", "login_failures", ["address", "at"])
    now = akener.db.base.utcnow()
    op.bulk_insert(
        roles,
        [
            {
                "id": name,
                "name": name,
                "description": description,
                "builtin": True,
                "permissions": permissions,
                "created_at": now,
            }
            for name, description, permissions in _BUILTIN
        ],
    )


def downgrade() -> None:
    op.drop_index("ix_login_failures_address_at", table_name="login_failures")
    op.drop_index("ix_login_failures_email_at", table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index("ix_web_sessions_user_id", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_table("user_roles")
    op.drop_table("users")
    op.drop_table("roles")
