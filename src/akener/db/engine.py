"""Engine and session factory for one process, made in the app's lifespan or a CLI command."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

WRITE_OPTION = "akener_write"


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite foreign keys on, WAL, a busy timeout and explicit BEGIN."""
    # SQL parameters (digests, session ids, CSRF tokens, hashes) never reach a log line.
    kwargs.setdefault("hide_parameters", True)
    if not url.startswith("sqlite"):
        kwargs.setdefault("pool_pre_ping", True)
        return create_async_engine(url, **kwargs)
    engine = create_async_engine(url, connect_args={"timeout": 15}, **kwargs)
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    """Take transaction control from the sqlite3 module, as SQLAlchemy's docs advise."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A transaction that will write takes the write lock up front: a deferred one that reads
        # first and writes later fails at once with SQLITE_BUSY when another writer got in between.
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def begin_write(session: AsyncSession) -> None:
    """Open the session's transaction as a writing one (BEGIN IMMEDIATE on SQLite)."""
    await session.connection(execution_options={WRITE_OPTION: True})
