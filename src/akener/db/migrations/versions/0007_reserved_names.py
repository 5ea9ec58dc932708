"""reserve the webhooks and metrics namespaces; suspend names keys and roles already hold there

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Before this revision ``webhooks.*`` and ``metrics.*`` were free-form operator scopes that anyone
able to create a key could hand out. From now on they are akener permissions, so a key or custom
role that already holds such a name must not gain power silently: the name is kept but suspended
(it takes no effect) and an audit event says so, until someone who holds it grants it again.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

import akener.db.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The namespaces this revision reserves (a fixed list: the code's constant may grow later).
NEWLY_RESERVED = ("webhooks", "metrics")
ACTOR = "upgrade"


def _suspended(names: Any) -> list[str]:
    if isinstance(names, str):  # some drivers hand JSON back as text
        names = json.loads(names)
    return [n for n in names or [] if str(n).split(".", 1)[0] in NEWLY_RESERVED]


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column("suspended_scopes", sa.JSON(), server_default="[]", nullable=False)
        )
    with op.batch_alter_table("roles") as batch:
        batch.add_column(
            sa.Column("suspended_permissions", sa.JSON(), server_default="[]", nullable=False)
        )
    _suspend("api_keys", "scopes", "suspended_scopes", "key", "key.scopes_suspended")
    _suspend("roles", "permissions", "suspended_permissions", "role", "role.permissions_suspended")


def _suspend(table: str, held: str, column: str, target_type: str, action: str) -> None:
    bind = op.get_bind()
    rows = sa.table(
        table,
        sa.column("id", sa.String()),
        sa.column("name", sa.String()),
        sa.column(held, sa.JSON()),
        sa.column(column, sa.JSON()),
    )
    events = sa.table(
        "audit_events",
        sa.column("occurred_at", akener.db.base.UTCDateTime()),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("target_type", sa.String()),
        sa.column("target_id", sa.String()),
        sa.column("target_name", sa.String()),
        sa.column("client", sa.String()),
        sa.column("changes", sa.JSON()),
    )
    query = sa.select(rows.c.id, rows.c.name, rows.c[held])
    if table == "roles":
        query = query.where(sa.column("builtin") == sa.false())
    for row_id, name, names in bind.execute(query).all():
        suspended = _suspended(names)
        if not suspended:
            continue
        bind.execute(rows.update().where(rows.c.id == row_id).values({column: suspended}))
        bind.execute(
            events.insert().values(
                occurred_at=akener.db.base.utcnow(),
                actor=ACTOR,
                action=action,
                target_type=target_type,
                target_id=row_id,
                target_name=name,
                client=None,
                changes={column: {"before": [], "after": suspended}},
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("roles") as batch:
        batch.drop_column("suspended_permissions")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("suspended_scopes")
