"""Run the Alembic migrations shipped inside the package."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config() -> Config:
    """Alembic configuration pointing at akener's own migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(files("akener.db") / "migrations"))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> str | None:
    """Bring the database to ``revision``; on PostgreSQL one process at a time.

    A database a newer akener already migrated is left alone: its revision is returned (else
    None), so the caller can warn. Migrations expand before they contract (docs/operations.md),
    so an older akener keeps working on the newer schema during a rolling upgrade.
    """
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Many processes may start together; the advisory lock ends with the transaction.
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(74218113)")
        newer: str | None = await conn.run_sync(_upgrade_on, revision)
        return newer


def _upgrade_on(connection: Connection, revision: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and not is_known_revision(current):
        return current
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
    return None


def head_revision() -> str | None:
    """The newest revision shipped with this version of akener."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def is_known_revision(revision: str) -> bool:
    """True when this version of akener ships ``revision`` (False: a newer akener wrote it)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:

        def _read(sync_conn: Connection) -> str | None:
            return MigrationContext.configure(sync_conn).get_current_revision()

        return await conn.run_sync(_read)
