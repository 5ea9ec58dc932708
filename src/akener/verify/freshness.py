"""SQLite: knowing, on every request, whether another process changed a key.

SQLite has no NOTIFY. Every key change bumps ``key_change_seq.seq`` in the transaction that makes
the change (akener.keys.events), so the number a reader sees and the data it sees always agree.
Before a process answers from its cache it makes sure it has seen the newest number:

1. It looks at the WAL-index header, the first 48 bytes of the database's ``-shm`` file, mapped
   into memory (about 0.2 µs). SQLite rewrites that header on every commit: it is how readers
   find the end of the WAL (https://www.sqlite.org/walformat.html, "The WAL-Index Header"). Same
   bytes as at the last check: nothing was committed since, by anyone, so nothing changed.
2. Otherwise (some commit happened: a key change, a usage flush, anything) it reads the counter
   row on a dedicated connection of its own (a few microseconds). A different number means some
   key changed somewhere (another worker, the CLI): the cache is emptied.

A failed read means the process cannot know: the cache is emptied and bypassed until a read
succeeds again. Without a mappable ``-shm`` file every check takes step 2.
"""

from __future__ import annotations

import logging
import mmap
import sqlite3
from pathlib import Path

from akener.verify.cache import KeyCache

log = logging.getLogger("akener.verify")

_READ_SEQ = "SELECT seq FROM key_change_seq WHERE id = 1"
_HEADER = 48  # bytes of the first copy of the WAL-index header


def sqlite_path(database: str | None) -> Path | None:
    """The file of a SQLite URL's database part; None for an in-memory database."""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).resolve()


class SqliteChangeWatch:
    """Compares the stored change counter with the last one seen, once per cached answer."""

    def __init__(self, path: Path, cache: KeyCache) -> None:
        self.path = path
        self.cache = cache
        self._conn: sqlite3.Connection | None = None
        self._seen: int | None = None
        self._shm: mmap.mmap | None = None
        self._header = b""  # the WAL-index header as it was when ``_seen`` was read

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: each read is its own short read transaction, never held open
        # (an open one would pin an old snapshot and never see a change).
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA query_only=1")
        # Never wait on the event loop: a busy database means "cannot tell", not a stall.
        conn.execute("PRAGMA busy_timeout=0")
        return conn

    def _map_shm(self) -> mmap.mmap | None:
        try:
            with open(f"{self.path}-shm", "rb") as shm:
                return mmap.mmap(shm.fileno(), _HEADER, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None  # not in WAL mode, or the file is too short yet: read the row each time

    def header(self) -> bytes:
        """The WAL-index header as it is now (empty when it is not mapped): it changes on
        every commit, by any process."""
        if self._shm is None:
            self._shm = self._map_shm()  # check() then reads the row once: the header is new
        shm = self._shm
        return shm[:_HEADER] if shm is not None else b""

    def check(self) -> bool:
        """True when the cache may answer now; empties it when a change happened."""
        shm = self._shm
        if shm is not None:
            header = shm[:_HEADER]
            if header == self._header:
                return True
        else:
            header = b""
        try:
            if self._conn is None:
                self._conn = self._connect()
            # Read after the header: the row is at least as new as the header we remember.
            row = self._conn.execute(_READ_SEQ).fetchone()
        except sqlite3.Error as exc:
            self._fail(exc)
            return False
        if shm is None:
            self._shm = self._map_shm()
        else:
            self._header = header
        seq = int(row[0]) if row is not None else -1
        if seq != self._seen or not self.cache.trusted:
            if self._seen is not None and self.cache.trusted:
                self.cache.clear()
            else:
                self.cache.trust()
            self._seen = seq
        return True

    def _fail(self, exc: Exception) -> None:
        if self.cache.trusted:
            log.warning("cannot read the key change counter (%s); cache bypassed", exc)
        self.cache.distrust()
        self._seen = None
        self._header = b""
        self.close()

    def close(self) -> None:
        """Close the dedicated connection and the header mapping."""
        if self._shm is not None:
            self._shm.close()
            self._shm = None
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
