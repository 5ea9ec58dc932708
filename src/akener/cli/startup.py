"""What ``akener serve`` checks before it serves: the port is free, the database answers.

Each failure is one ``error:`` line and exit status 1 (through the CLI wrapper), never a
traceback: an unreachable database, a full disk or a read-only directory are conditions an
operator fixes, not bugs (docs/operations.md, "When things fail").
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time

import typer
from sqlalchemy import text
from sqlalchemy.engine import make_url

from akener.db.engine import engine_for
from akener.db.errors import DATABASE_ERRORS, describe, is_database_error
from akener.errors import ServiceUnavailable
from akener.settings import Settings
from akener.verify.freshness import sqlite_path

RETRY_SECONDS = 1.0
_FILE_ERRORS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT})


def check_port(host: str, port: int) -> None:
    """Refuse to start when something already listens on ``host:port``.

    granian binds with SO_REUSEPORT, so a second server on a busy port would start and share
    it, each answering at random. A plain bind (SO_REUSEADDR only, so a port in TIME_WAIT after
    a restart is still usable) fails exactly when another socket holds the port.
    """
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ServiceUnavailable(f"cannot use address {host!r}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServiceUnavailable(
                    f"address already in use: {host}:{port} (another akener or program listens"
                    " there; stop it or choose another port with --port or AKENER_PORT)"
                ) from None
            raise ServiceUnavailable(f"cannot bind {host}:{port}: {exc.strerror}") from None


def where(settings: Settings) -> str:
    """The database's location for messages, without its password."""
    url = make_url(settings.database_url)
    if settings.is_sqlite:
        return url.database or "memory"
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


async def _ping(settings: Settings) -> None:
    engine = engine_for(settings)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


def check_database(settings: Settings) -> None:
    """Before migrating: SQLite's directory must be writable; PostgreSQL must answer."""
    if settings.is_sqlite:
        check_sqlite_directory(settings)
    else:
        wait_for_database(settings)


def check_sqlite_directory(settings: Settings) -> None:
    """SQLite says only "unable to open database file" on a read-only disk: say which and why."""
    path = sqlite_path(make_url(settings.database_url).database)
    if path is None:
        return
    directory = path.parent
    if not directory.is_dir():
        raise ServiceUnavailable(f"the database's directory {directory} does not exist")
    if os.statvfs(directory).f_flag & os.ST_RDONLY:
        raise ServiceUnavailable(
            f"the database's directory {directory} is on a read-only disk;"
            " akener must be able to write its database there"
        )


def wait_for_database(settings: Settings) -> None:
    """PostgreSQL: wait up to AKENER_DB_STARTUP_WAIT_SECONDS for the database to answer
    (databases often start after the services that use them)."""
    deadline = time.monotonic() + settings.db_startup_wait_seconds
    told = False
    while True:
        try:
            asyncio.run(_ping(settings))
            return
        except DATABASE_ERRORS as exc:
            if not is_database_error(exc):
                raise
            if time.monotonic() + RETRY_SECONDS > deadline:
                waited = f" after waiting {settings.db_startup_wait_seconds:g} s" if told else ""
                raise ServiceUnavailable(
                    f"cannot reach the database at {where(settings)}{waited}; {_reason(exc)}"
                ) from None
            if not told:
                typer.echo(
                    f"waiting up to {settings.db_startup_wait_seconds:g} s for the database at"
                    f" {where(settings)} (AKENER_DB_STARTUP_WAIT_SECONDS)",
                    err=True,
                )
                told = True
            time.sleep(RETRY_SECONDS)


def _reason(exc: BaseException) -> str:
    """Why the database failed, in a few words and the driver's own first line."""
    reason = getattr(exc, "orig", None) or exc
    detail = f"{type(reason).__name__}: {(str(reason).splitlines() or [''])[0][:200]}"
    summary = describe(exc)
    return f"{summary} ({detail})"


def startup_failure(exc: BaseException) -> str | None:
    """One line for a start-up failure of the disk or the database; None for anything else."""
    if not isinstance(exc, DATABASE_ERRORS) or isinstance(exc, BrokenPipeError):
        return None  # stdout closed by a pager or `head`: not a database or disk failure
    if isinstance(exc, OSError) and exc.errno in _FILE_ERRORS:
        # Raised by akener's own file writes (.env); the database's come wrapped by SQLAlchemy.
        where = exc.filename or f"a file in {os.getcwd()}"
        return f"cannot write {where}: {os.strerror(exc.errno or 0)}"
    if is_database_error(exc):
        return _reason(exc)
    return None
