"""Old secret versions retire themselves: a key found through an old pepper is re-digested.

When the verifier finds a key by its digest under an old pepper version (a key made before a
secret rotation), the stored digest is rewritten under the current version, once, in the
background, so the request never waits for it. Once ``akener keys list`` shows no key left on an
old version, that secret can be removed from ``AKENER_OLD_SECRET_KEYS``.

The rewrite is not a key change: the key's id, name, scopes and status stay the same, and every
process finds it by any of its digests, so no cache needs emptying. The statement only applies
while the old digest is still stored, so several processes doing it at once is harmless.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from akener.db.engine import begin_write
from akener.keys.models import ApiKey
from akener.keys.peppers import Peppers
from akener.keys.repository import KeyRepository

log = logging.getLogger("akener.verify")


class DigestRetirer:
    """Schedules at most one rewrite per key and digest column in this process."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._started: set[tuple[str, str]] = set()  # (key id, column) rewrites begun
        self._tasks: set[asyncio.Task[None]] = set()

    def consider(self, row: ApiKey, digests: list[str], peppers: Peppers) -> None:
        """Rewrite ``row``'s digests that match ``digests`` under an old pepper version."""
        current = digests[0]
        found = (
            ("digest", row.digest, row.pepper_version),
            ("previous_digest", row.previous_digest, row.previous_pepper_version),
        )
        for column, stored, version in found:
            if stored is None or stored == current or stored not in digests:
                continue
            if version == peppers.current or (row.id, column) in self._started:
                continue
            self._started.add((row.id, column))
            task = asyncio.get_running_loop().create_task(
                self._rewrite(row.id, column, stored, current, peppers.current)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _rewrite(self, key_id: str, column: str, old: str, new: str, version: int) -> None:
        try:
            async with self._sessionmaker() as session:
                await begin_write(session)
                done = await KeyRepository(session).replace_digest(
                    key_id, column, old=old, new=new, version=version
                )
                await session.commit()
            if done:
                log.info("key %s moved to secret version %d", key_id, version)
        except (DBAPIError, OSError) as exc:
            # Next time the key is seen in a fresh process (or after a restart) it is tried again.
            self._started.discard((key_id, column))
            log.warning("could not move key %s to the current secret: %s", key_id, exc)

    async def wait(self) -> None:
        """Let the rewrites under way finish (tests; shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
