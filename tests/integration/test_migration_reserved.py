"""Reserving a namespace on upgrade gives no key or role power silently (migration 0007)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.engine import make_url

from akener.accounts.models import Role
from akener.audit.models import AuditEvent
from akener.db.base import UTCDateTime, utcnow
from akener.db.engine import make_engine, make_sessionmaker
from akener.db.migrate import alembic_config, upgrade
from akener.keys.models import ApiKey
from akener.settings import Settings
from akener.verify.service import entry_from_row
from tests.conftest import PG_URL, _admin


def _reserving_revision() -> tuple[str, str]:
    """(revision, down_revision) of the migration that reserves webhooks and metrics."""
    for script in ScriptDirectory.from_config(alembic_config()).walk_revisions():
        if getattr(script.module, "NEWLY_RESERVED", None) == ("webhooks", "metrics"):
            return script.revision, str(script.down_revision)
    raise AssertionError("no migration reserves webhooks and metrics")


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database no migration has touched yet."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    base = make_url(Settings(database_url=PG_URL, _env_file=None).database_url)  # type: ignore[call-arg]
    name = f"akener_reserve_{os.getpid()}"
    admin = base.set(database="postgres").render_as_string(hide_password=False)
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    asyncio.run(_admin(admin, drop, f'CREATE DATABASE "{name}"'))
    yield base.set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(admin, drop))


# The tables as they were before the migration (the models already have the new columns).
OLD_KEYS = sa.table(
    "api_keys",
    *(sa.column(c, sa.String()) for c in ("id", "name", "digest", "masked_key", "status")),
    *(sa.column(c) for c in ("pepper_version", "request_count", "created_by")),
    sa.column("scopes", sa.JSON()),
    sa.column("created_at", UTCDateTime()),
)
OLD_ROLES = sa.table(
    "roles",
    *(sa.column(c, sa.String()) for c in ("id", "name", "description")),
    sa.column("builtin", sa.Boolean()),
    sa.column("permissions", sa.JSON()),
    sa.column("created_at", UTCDateTime()),
)


async def test_upgrade_suspends_names_in_newly_reserved_namespaces(empty_url: str) -> None:
    _, before = _reserving_revision()
    engine = make_engine(empty_url)
    try:
        await upgrade(engine, before)
        async with engine.begin() as conn:
            now = utcnow()
            for i, scopes in enumerate(
                (
                    ["webhooks.read", "metrics.read", "incidents.write", "webhooks.custom"],
                    ["api_keys.read", "metrics:x", "webhooksx.read"],
                )
            ):
                await conn.execute(
                    OLD_KEYS.insert().values(
                        id=f"{i:032x}",
                        name=f"k{i}",
                        digest=f"{i:064x}",
                        pepper_version=1,
                        masked_key="akener_…",
                        status="ACTIVE",
                        scopes=scopes,
                        created_at=now,
                        created_by="cli",
                        request_count=0,
                    )
                )
            await conn.execute(
                OLD_ROLES.insert().values(
                    id="f" * 32,
                    name="Old watchers",
                    description="",
                    builtin=False,
                    permissions=["metrics.read", "audit.read"],
                    created_at=now,
                )
            )
        # Through the reserving revision to the newest schema, which the models describe.
        await upgrade(engine)
        async with make_sessionmaker(engine)() as session:
            flagged = await session.get(ApiKey, f"{0:032x}")
            clean = await session.get(ApiKey, f"{1:032x}")
            role = await session.get(Role, "f" * 32)
            events = list((await session.execute(select(AuditEvent))).scalars())
        assert flagged is not None and clean is not None and role is not None
        assert flagged.suspended_scopes == ["webhooks.read", "metrics.read", "webhooks.custom"]
        assert entry_from_row(flagged, [flagged.digest]).scopes == {"incidents.write"}
        assert clean.suspended_scopes == []
        assert entry_from_row(clean, [clean.digest]).scopes == set(clean.scopes)
        assert role.suspended_permissions == ["metrics.read"]
        assert role.granted == {"audit.read"}
        assert sorted((e.action, e.target_id, e.actor) for e in events) == [
            ("key.scopes_suspended", flagged.id, "upgrade"),
            ("role.permissions_suspended", role.id, "upgrade"),
        ]
        assert events[0].changes is not None
    finally:
        await engine.dispose()
