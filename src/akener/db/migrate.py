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


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision``; on PostgreSQL one process at a time."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Many processes may start together; the advisory lock ends with the transaction.
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(74218113)")
        await conn.run_sync(_upgrade_on, revision)


def _upgrade_on(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def head_revision() -> str | None:
    """The newest revision shipped with this version of akener."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:

        def _read(sync_conn: Connection) -> str | None:
            return MigrationContext.configure(sync_conn).get_current_revision()

        return await conn.run_sync(_read)
