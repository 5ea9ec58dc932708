"""Engine and session factory for one process, made in the app's lifespan or a CLI command."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from akener.settings import Settings

WRITE_OPTION = "akener_write"

SQLITE_BUSY_SECONDS = 15.0  # without a query timeout: how long a SQLite writer waits for the lock
APPLICATION_NAME = "akener"  # pooled connections in pg_stat_activity, followed by ":<pid>"


def application_name() -> str:
    """How this process's pooled connections are named in ``pg_stat_activity``."""
    return f"{APPLICATION_NAME}:{os.getpid()}"


def _unique_statement_name() -> str:
    # Behind a transaction-pooling PgBouncer a server connection serves many clients in turn;
    # asyncpg's numbered names (__asyncpg_stmt_1__) would collide between them
    # (SQLAlchemy's asyncpg dialect docs, "Prepared Statement Name with PGBouncer").
    return f"__akener_{uuid.uuid4().hex}__"


def make_engine(
    url: str,
    *,
    connect_timeout: float | None = None,
    query_timeout: float | None = None,
    pool_timeout: float | None = None,
    before_begin: Callable[[], None] | None = None,
    pool_size: int | None = None,
    statement_cache: bool = True,
    **kwargs: Any,
) -> AsyncEngine:
    """An async engine; the timeouts given bound every wait on the client side.

    PostgreSQL (asyncpg): ``timeout`` bounds a new connection (TCP and start-up handshake),
    ``command_timeout`` every statement, ``pool_timeout`` the wait for a free pooled
    connection. They hold through PgBouncer and against a frozen server, where server-side
    settings (``statement_timeout``) would never fire. SQLite: the query timeout is the busy
    timeout (how long a writer waits for the lock). None leaves the driver's default (no bound
    on a statement: migrations and test fixtures). ``before_begin`` runs before every
    transaction and may raise to refuse it (the SQLite file guard).

    PostgreSQL connections: ``pool_size`` bounds them (no overflow: the pool never opens more,
    a request waits up to ``pool_timeout`` instead); None keeps SQLAlchemy's default pool.
    Each is named ``akener:<pid>`` in ``pg_stat_activity``. Without ``statement_cache`` every
    statement is prepared under a unique name inside its own transaction and never reused,
    which is what a PgBouncer in transaction mode needs when it does not track prepared
    statements itself.
    """
    # SQL parameters (digests, session ids, CSRF tokens, hashes) never reach a log line.
    kwargs.setdefault("hide_parameters", True)
    if not url.startswith("sqlite"):
        kwargs.setdefault("pool_pre_ping", True)
        if pool_timeout is not None:
            kwargs.setdefault("pool_timeout", pool_timeout)
        if pool_size is not None:
            kwargs.setdefault("pool_size", pool_size)
            kwargs.setdefault("max_overflow", 0)
        connect_args: dict[str, Any] = {"server_settings": {"application_name": application_name()}}
        if connect_timeout is not None:
            connect_args["timeout"] = connect_timeout
        if query_timeout is not None:
            connect_args["command_timeout"] = query_timeout
        if not statement_cache:
            connect_args["statement_cache_size"] = 0  # asyncpg's own cache
            connect_args["prepared_statement_cache_size"] = 0  # SQLAlchemy's
            connect_args["prepared_statement_name_func"] = _unique_statement_name
        engine = create_async_engine(url, connect_args=connect_args, **kwargs)
        if before_begin is not None:
            event.listen(engine.sync_engine, "begin", lambda _conn: before_begin())
        return engine
    busy = query_timeout if query_timeout is not None else SQLITE_BUSY_SECONDS
    engine = create_async_engine(url, connect_args={"timeout": busy}, **kwargs)
    _configure_sqlite(engine, int(busy * 1000), before_begin)
    return engine


def _configure_sqlite(
    engine: AsyncEngine, busy_ms: int, before_begin: Callable[[], None] | None
) -> None:
    """Take transaction control from the sqlite3 module, as SQLAlchemy's docs advise."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if before_begin is not None:
            before_begin()
        # A transaction that will write takes the write lock up front: a deferred one that reads
        # first and writes later fails at once with SQLITE_BUSY when another writer got in between.
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def engine_for(
    settings: Settings,
    *,
    before_begin: Callable[[], None] | None = None,
    migrations: bool = False,
) -> AsyncEngine:
    """The engine a ``Settings`` describes, with its timeouts. For ``migrations`` statements
    are not bounded: building an index on a big table, or waiting for another host's
    migration to finish, may take longer than any request should."""
    return make_engine(
        settings.database_url,
        connect_timeout=settings.db_connect_timeout_seconds,
        query_timeout=None if migrations else settings.db_query_timeout_seconds,
        pool_timeout=settings.db_pool_timeout_seconds,
        before_begin=before_begin,
        pool_size=settings.db_pool_size,
        statement_cache=settings.db_statement_cache,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def begin_write(session: AsyncSession) -> None:
    """Open the session's transaction as a writing one (BEGIN IMMEDIATE on SQLite)."""
    await session.connection(execution_options={WRITE_OPTION: True})
