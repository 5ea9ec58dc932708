"""PostgreSQL, one host: a key change counter in shared memory, read before every cached answer.

NOTIFY reaches the other processes a little after the changing transaction commits, so on its own
it leaves a window in which another worker of the same host still answers from its cache after
the change's answer was sent. This closes that window on the host that made the change, the same
way akener.verify.freshness does for SQLite:

* every process of one database on one host maps the same 8-byte file (``/dev/shm`` by default,
  one file per database identity: PostgreSQL's system identifier and the database name);
* a process that commits a key change adds one to it right after the commit, before it answers
  (akener.keys.events calls ``bump`` from the after-commit hook);
* before answering from its cache every process compares the number with the last one it saw
  (an 8-byte read, well under a microsecond); a different number empties its cache, so the
  next read goes to the database, which already holds the change.

The increment takes an advisory lock on the file (``flock``), so two writers never lose one;
readers take no lock: a torn read can only look like a change, which costs a cache refill.
Processes on other hosts are reached by NOTIFY alone (docs/verification.md gives the bound).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import mmap
import os
import re
import stat
import struct
import tempfile
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from akener.verify.cache import KeyCache

log = logging.getLogger("akener.verify")

_SIZE = 8
_COUNTER = struct.Struct("<Q")
PREFIX = "akener-changes-"


def default_dir() -> Path:
    """Where counters live when no directory is configured: a directory of this user's own in
    shared memory (``/dev/shm/akener-<uid>``), else in the temporary directory."""
    shm = Path("/dev/shm")  # noqa: S108 -- a private 0700 subdirectory is made and checked
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    return base / f"akener-{os.getuid()}"


def private_dir(directory: Path) -> Path:
    """``directory``, made 0700 if missing; refused unless this user owns it and no one else
    may write in it (another local user could otherwise hold the counter still)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.stat(directory, follow_symlinks=False)
    if info.st_uid != os.getuid() or info.st_mode & 0o022 or not stat.S_ISDIR(info.st_mode):
        raise PermissionError(
            f"{directory} must be a directory owned by this user, not writable by others"
        )
    return directory


def counter_path(directory: Path, identity: str, database: str) -> Path:
    """The counter file of one database: readable name part, then a digest of its identity."""
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", database)[:40]
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return directory / f"{PREFIX}{readable}-{digest}"


_IDENTITY = text(
    "SELECT (SELECT system_identifier FROM pg_control_system())::text, current_database()"
)


async def database_identity(engine: AsyncEngine) -> tuple[str, str]:
    """(identity, database name) of a PostgreSQL database, the same whatever URL reached it.

    The system identifier is shared by a primary and its physical standbys, so a failover keeps
    the same counter. Where it cannot be read (a pooler that forbids it) the URL's host, port
    and database stand in.
    """
    url = engine.url
    try:
        async with engine.connect() as conn:
            system_id, name = (await conn.execute(_IDENTITY)).one()
        return f"{system_id}/{name}", str(name)
    except (DBAPIError, OSError, TimeoutError):
        name = url.database or ""
        return f"{url.host}:{url.port}/{name}", name


async def open_host_counter(
    engine: AsyncEngine, directory: str | None, cache: KeyCache | None = None
) -> HostChangeCounter | None:
    """The counter of ``engine``'s database on this host; None (and a warning) when the file
    cannot be made, in which case other processes of this host rely on NOTIFY alone."""
    identity, name = await database_identity(engine)
    path = counter_path(Path(directory) if directory else default_dir(), identity, name)
    try:
        return HostChangeCounter(path, cache)
    except OSError as exc:
        log.warning(
            "cannot open the key change counter %s (%s); other processes of this host learn of "
            "key changes by NOTIFY only",
            path,
            exc,
        )
        return None


class HostChangeCounter:
    """The shared counter of one database on this host, and this process's view of it."""

    def __init__(self, path: Path, cache: KeyCache | None = None) -> None:
        self.path = path
        self.cache = cache
        private_dir(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            if os.fstat(fd).st_size < _SIZE:
                os.ftruncate(fd, _SIZE)  # a larger size never shrinks: existing counts stay
            self._map = mmap.mmap(fd, _SIZE, access=mmap.ACCESS_WRITE)
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd
        self._seen = self._map[:_SIZE]

    def value(self) -> int:
        """The number of key changes committed through this host (for tests and benches)."""
        return int(_COUNTER.unpack(self._map[:_SIZE])[0])

    def bump(self, _key_ids: frozenset[str] | None = None) -> None:
        """Count one committed key change (called after commit, before the answer)."""
        if self._fd is None:
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            before = self._map[:_SIZE]
            (n,) = _COUNTER.unpack(before)
            after = _COUNTER.pack((n + 1) & 0xFFFF_FFFF_FFFF_FFFF)
            self._map[:_SIZE] = after
            if self._seen == before:
                # Our own change, and nothing unseen before it: this process already forgot
                # the key itself, so its cache need not be emptied.
                self._seen = after
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def check(self) -> bool:
        """Empty the cache when some process of this host changed a key since the last look.

        True while the counter is open (the cache's own trust flag says the rest).
        """
        if self._fd is None:
            return False  # closed: this process can no longer tell
        now = self._map[:_SIZE]
        if now != self._seen:
            self._seen = now
            if self.cache is not None:
                self.cache.clear()
        return True

    def close(self) -> None:
        """Unmap and close the file (it stays for the other processes)."""
        if self._fd is not None:
            self._map.close()
            os.close(self._fd)
            self._fd = None
