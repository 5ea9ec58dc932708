"""Which failures count as "the database cannot answer", and what akener says about each."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from akener.db.errors import (
    DISK_FULL,
    GONE,
    READ_ONLY,
    DatabaseFileGone,
    describe,
    is_database_error,
)
from akener.db.sqlite_file import SqliteFileGuard


def _sqlite_error(path: Path) -> OperationalError:
    """A real error from SQLite writing through a read-only connection."""
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.execute("INSERT INTO t VALUES (1)")
    except sqlite3.OperationalError as exc:
        return OperationalError("INSERT", {}, exc)
    finally:
        conn.close()
    raise AssertionError("the write went through")


def test_a_read_only_database_is_described_as_such(tmp_path: Path) -> None:
    assert describe(_sqlite_error(tmp_path / "a.db")) == READ_ONLY


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), DISK_FULL),
        (
            OperationalError("x", {}, sqlite3.OperationalError("database or disk is full")),
            DISK_FULL,
        ),
        (OSError(errno.EROFS, "Read-only file system"), READ_ONLY),
        (TimeoutError(), "the database did not answer in time"),
        (PoolTimeoutError("QueuePool limit reached"), "the database did not answer in time"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "the database cannot be reached"),
        (DatabaseFileGone(GONE), GONE),
    ],
)
def test_database_failures_are_unavailable_with_a_plain_reason(
    exc: BaseException, said: str
) -> None:
    assert is_database_error(exc)
    assert describe(exc) == said


def test_a_constraint_violation_is_not_an_outage() -> None:
    assert not is_database_error(IntegrityError("x", {}, Exception("UNIQUE constraint failed")))
    assert not is_database_error(ValueError("no"))


def test_the_file_guard_notices_a_replaced_file_for_good(tmp_path: Path) -> None:
    path = tmp_path / "akener.db"
    path.write_bytes(b"one")
    guard = SqliteFileGuard(path)
    guard.before_begin()  # same file: allowed
    (tmp_path / "other").write_bytes(b"two")
    (tmp_path / "other").replace(path)
    with pytest.raises(DatabaseFileGone):
        guard.before_begin()
    assert not guard.check()
