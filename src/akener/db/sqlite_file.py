"""SQLite: noticing that the database file was deleted or replaced under a running process.

An open SQLite connection keeps writing into the file it opened, even after that file was
unlinked or renamed over (a restore copied into place, a cleanup script): every commit would be
acknowledged and then lost. The guard remembers the file's identity (device and inode) when the
process starts and compares it before every transaction and once a second in the background; once
they differ the guard refuses every transaction for good (fail closed) until akener restarts.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from akener.db.errors import GONE, DatabaseFileGone

log = logging.getLogger("akener.db")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class SqliteFileGuard:
    """Holds the identity of the database file; ``intact`` turns False once, for good."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.identity = _identity(path)
        self.intact = True

    def check(self) -> bool:
        """Compare the file at the path with the one opened; False once they ever differed."""
        if not self.intact:
            return False
        now = _identity(self.path)
        if self.identity is None:
            # No file when the process started (nothing was written yet): the first one seen
            # is the one this process uses.
            self.identity = now
        elif now != self.identity:
            self.intact = False
            log.error("database file %s was deleted or replaced; refusing every request", self.path)
        return self.intact

    def before_begin(self) -> None:
        """Refuse a transaction once the file is gone (a stat costs about a microsecond)."""
        if not self.check():
            raise DatabaseFileGone(GONE)

    async def run(self, every: float = 1.0) -> None:
        """Check in the background, so answers from the cache stop too."""
        while True:
            await asyncio.sleep(every)
            if not self.check():
                return
