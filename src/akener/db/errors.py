"""Database-layer failures: which exceptions mean "the database cannot answer", and what to say.

Every edge (verification, API, dashboard, CLI) turns these into "unavailable" (503, or one
``error:`` line) instead of a traceback: a database that is down, frozen, out of disk or
read-only is an operating condition, not a bug. Constraint violations are not in this family:
services turn those into domain errors themselves.
"""

from __future__ import annotations

import errno
import logging
import time

from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from akener.errors import ServiceUnavailable

# OSError from a driver (refused, reset, no route), TimeoutError (asyncio timeouts: asyncpg's
# connect and command timeouts), the pool's own timeout, and everything the DB-API raises.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    PoolTimeoutError,
    SQLAlchemyError,
)

DISK_FULL = "the database's disk is full; nothing was saved"
READ_ONLY = "the database is on a read-only disk; nothing was saved"
PREPARED_STATEMENTS = (
    "the database refused a prepared statement; behind PgBouncer in transaction mode set"
    " AKENER_DB_STATEMENT_CACHE=false (docs/scaling.md)"
)
GONE = "the database file was deleted or replaced while akener ran; restart akener"


class DatabaseFileGone(OSError):
    """The SQLite file this process opened is no longer the one at its path."""


def is_database_error(exc: BaseException) -> bool:
    """True for a failure of the database layer (not a constraint violation)."""
    return isinstance(exc, DATABASE_ERRORS) and not isinstance(exc, IntegrityError)


def describe(exc: BaseException) -> str:
    """What an operator or a client should read about a database failure (never a secret)."""
    reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(reason).lower()
    if isinstance(reason, DatabaseFileGone):
        return GONE
    code = getattr(reason, "errno", None)
    if code == errno.ENOSPC or "disk is full" in text or "no space left" in text:
        return DISK_FULL
    if code == errno.EROFS or "readonly database" in text or "read-only file system" in text:
        return READ_ONLY
    if "database is locked" in text:  # SQLite: another writer held the lock past the timeout
        return "the database is busy with another writer; try again"
    if isinstance(reason, TimeoutError | PoolTimeoutError) or "timeout" in text:
        return "the database did not answer in time"
    if "unable to open database file" in text:
        return "the database file cannot be opened or created"
    if "prepared statement" in text:  # asyncpg's named statements through a transaction pooler
        return PREPARED_STATEMENTS
    return "the database cannot be reached"


def unavailable(exc: BaseException) -> ServiceUnavailable:
    """The domain error an edge answers for a database failure."""
    return ServiceUnavailable(describe(exc))


class RateLimitedLog:
    """Logs one line per ``every`` seconds, not one per failing request."""

    def __init__(self, logger: logging.Logger, every: float = 10.0) -> None:
        self.logger = logger
        self.every = every
        self._last = -every
        self.suppressed = 0

    def warning(self, message: str, exc: BaseException) -> None:
        """One line: the message, the exception's type and its description; no traceback."""
        now = time.monotonic()
        if now - self._last < self.every:
            self.suppressed += 1
            return
        self._last = now
        reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        self.logger.warning(
            "%s: %s (%s)",
            message,
            describe(exc),
            type(reason).__name__,
            extra={"suppressed": self.suppressed},
        )
        self.suppressed = 0
