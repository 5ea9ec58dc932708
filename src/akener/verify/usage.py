"""Key usage gathered in memory and written in batches, never one write per request.

Each accepted request adds one to a per-key counter (a dict increment) and notes the time. A
background task flushes every ``flush_seconds`` and on shutdown, in one transaction:

* ``key_usage(key_id, day, count)`` rows are incremented (UTC days);
* ``api_keys.request_count`` is incremented;
* ``api_keys.last_used_at`` is moved forward, at most once a minute per key from one process;
* ``key_refusals(key_id, day, reason, count)`` rows are incremented for refused requests of a
  known key (``refuse``: one dict increment on the hot path, like an accepted request).

Loss is bounded: a crash (not a clean shutdown) loses what was counted since the last flush, at
most ``flush_seconds`` of counts, and ``last_used_at`` lags by at most a minute plus that. The
flush never calls ``record_key_change`` (usage is not something the checks read) and skips keys
deleted meanwhile (the statements match no row for them).

Every flush locks its ``api_keys`` rows in key id order first, and retries deadlocks and
serialization failures, so workers flushing together (as they all do at shutdown) never lose
counts to each other. A flush that fails keeps its counts in memory, merged with the new ones;
at shutdown the process keeps trying for ``SHUTDOWN_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, date, datetime

from sqlalchemy import Date, bindparam, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from akener.db.base import UTCDateTime
from akener.db.engine import begin_write
from akener.keys.models import ApiKey

log = logging.getLogger("akener.verify")

WRITE_ATTEMPTS = 5
SHUTDOWN_SECONDS = 5.0  # how long a stopping process keeps trying to write its counts
# deadlock_detected, serialization_failure: the transaction lost a race, try it again.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})
_LOCK_CHUNK = 1000
LAST_USED_EVERY = 60.0  # seconds between two writes of one key's last_used_at by one process
_DAY = 86_400

# INSERT ... SELECT: a key deleted since it was counted yields no row (and no foreign-key error).
_ADD_DAY = text(
    "INSERT INTO key_usage (key_id, day, count) "
    "SELECT id, :day, :n FROM api_keys WHERE id = :key_id "
    "ON CONFLICT (key_id, day) DO UPDATE SET count = key_usage.count + excluded.count"
).bindparams(bindparam("day", type_=Date()))
_ADD_REFUSED = text(
    "INSERT INTO key_refusals (key_id, day, reason, count) "
    "SELECT id, :day, :reason, :n FROM api_keys WHERE id = :key_id "
    "ON CONFLICT (key_id, day, reason) DO UPDATE SET count = key_refusals.count + excluded.count"
).bindparams(bindparam("day", type_=Date()))
_ADD_TOTAL = text("UPDATE api_keys SET request_count = request_count + :n WHERE id = :key_id")
_TOUCH = text(
    "UPDATE api_keys SET last_used_at = :at "
    "WHERE id = :key_id AND (last_used_at IS NULL OR last_used_at < :at)"
).bindparams(bindparam("at", type_=UTCDateTime()))


class UsageRecorder:
    """Counts accepted requests per key in memory; ``flush`` writes them out."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._day = int(time.time()) // _DAY
        # (key_id, day number) -> requests not yet written.
        self._counts: dict[tuple[str, int], int] = {}
        self._current: dict[str, int] = {}  # the running day's counts, the hot dict
        # (key_id, reason, day number) -> refused requests not yet written; and the running
        # day's, keyed (key_id, reason).
        self._refused: dict[tuple[str, str, int], int] = {}
        self._refused_current: dict[tuple[str, str], int] = {}
        self._seen_at: dict[str, float] = {}  # key_id -> last accepted request (POSIX seconds)
        self._written_at: dict[str, float] = {}  # key_id -> last_used_at value last written
        self._lock = asyncio.Lock()
        # Read by akener.metrics: when everything counted was last written (POSIX seconds),
        # failed flushes, and requests given up on at shutdown (the only loss a clean stop has).
        self.flushed_at = time.time()
        self.failures = 0
        self.written = 0  # flushes that wrote counts: copies of answers showing them are stale
        self.lost = 0

    def record(self, key_id: str) -> None:
        """Note one accepted request by ``key_id`` (hot path: two dict writes)."""
        now = time.time()
        if now // _DAY != self._day:
            self._roll_day(int(now) // _DAY)
        current = self._current
        current[key_id] = current.get(key_id, 0) + 1
        self._seen_at[key_id] = now

    def refuse(self, key_id: str, reason: str) -> None:
        """Note one refused request by ``key_id`` and why (hot path: one dict write)."""
        now = time.time()
        if now // _DAY != self._day:
            self._roll_day(int(now) // _DAY)
        slot = (key_id, reason)
        current = self._refused_current
        current[slot] = current.get(slot, 0) + 1

    def _roll_day(self, day: int) -> None:
        self._move_current()
        self._day = day

    def _move_current(self) -> None:
        for key_id, n in self._current.items():
            slot = (key_id, self._day)
            self._counts[slot] = self._counts.get(slot, 0) + n
        self._current = {}
        for (key_id, reason), n in self._refused_current.items():
            refused = (key_id, reason, self._day)
            self._refused[refused] = self._refused.get(refused, 0) + n
        self._refused_current = {}

    @property
    def pending(self) -> int:
        """Requests (accepted or refused) counted but not yet written."""
        return (
            sum(self._counts.values())
            + sum(self._current.values())
            + sum(self._refused.values())
            + sum(self._refused_current.values())
        )

    async def flush(self, *, attempts: int = WRITE_ATTEMPTS) -> bool:
        """Write what was counted; True when nothing is left pending. On any failure the
        counts stay in memory, merged with what comes meanwhile, for the next flush."""
        async with self._lock:
            self._move_current()
            counts, self._counts = self._counts, {}
            refused, self._refused = self._refused, {}
            touches = {
                key_id: at
                for key_id, at in self._seen_at.items()
                if at - self._written_at.get(key_id, 0.0) >= LAST_USED_EVERY
            }
            if not counts and not touches and not refused:
                self.flushed_at = time.time()
                return True
            try:
                await self._write(counts, touches, refused, attempts)
            except Exception as exc:  # whatever failed, the counts are not lost
                log.warning(
                    "could not write key usage (%s); %d requests kept for the next flush",
                    _reason(exc),
                    sum(counts.values()) + sum(refused.values()),
                )
                for slot, n in counts.items():
                    self._counts[slot] = self._counts.get(slot, 0) + n
                for refusal, n in refused.items():
                    self._refused[refusal] = self._refused.get(refusal, 0) + n
                self.failures += 1
                return False
            self.flushed_at = time.time()
            self.written += 1
            self._written_at.update(touches)
            for key_id, at in touches.items():
                if self._seen_at.get(key_id) == at:
                    del self._seen_at[key_id]
            # A value written over a minute ago throttles nothing any more: forget it, so the
            # map holds only recently used keys (deleted keys included) and stays small.
            horizon = time.time() - LAST_USED_EVERY
            self._written_at = {k: at for k, at in self._written_at.items() if at > horizon}
            return True

    async def _write(
        self,
        counts: dict[tuple[str, int], int],
        touches: dict[str, float],
        refused: dict[tuple[str, str, int], int],
        attempts: int,
    ) -> None:
        # One order for every process (key id, then day): two workers flushing at once wait
        # for each other instead of deadlocking.
        days = [{"key_id": k, "day": _date(d), "n": n} for (k, d), n in sorted(counts.items())]
        totals: dict[str, int] = {}
        for (key_id, _), n in counts.items():
            totals[key_id] = totals.get(key_id, 0) + n
        total_rows = [{"key_id": k, "n": totals[k]} for k in sorted(totals)]
        touch_rows = [{"key_id": k, "at": _datetime(touches[k])} for k in sorted(touches)]
        refused_rows = [
            {"key_id": k, "day": _date(d), "reason": r, "n": n}
            for (k, r, d), n in sorted(refused.items())
        ]
        locked = sorted(totals.keys() | touches.keys() | {k for k, _, _ in refused})
        for attempt in range(1, attempts + 1):
            try:
                async with self._sessionmaker() as session:
                    await begin_write(session)
                    await _lock_in_order(session, locked)
                    if total_rows:
                        await session.execute(_ADD_TOTAL, total_rows)
                        await session.execute(_ADD_DAY, days)
                    if touch_rows:
                        await session.execute(_TOUCH, touch_rows)
                    if refused_rows:
                        await session.execute(_ADD_REFUSED, refused_rows)
                    await session.commit()
                return
            except DBAPIError as exc:
                # IntegrityError: a key was deleted between our SELECT and the insert
                # (PostgreSQL checks the foreign key at insert); the next attempt skips it.
                # Deadlocks and serialization failures are worth another go too.
                if attempt == attempts or not (
                    isinstance(exc, IntegrityError) or _sqlstate(exc) in RETRY_SQLSTATES
                ):
                    raise
                log.info("key usage write: retrying after %s", _reason(exc))
                await asyncio.sleep(random.uniform(0.01, 0.05) * attempt)  # noqa: S311

    async def close(self, *, within: float = SHUTDOWN_SECONDS) -> None:
        """Flush at shutdown, trying again for up to ``within`` seconds before giving up."""
        deadline = time.monotonic() + within
        pending = self.pending
        while not await self.flush():
            if time.monotonic() >= deadline:
                self.lost += self.pending
                log.error("key usage not written at shutdown: %d requests lost", self.pending)
                return
            await asyncio.sleep(0.2)
        log.info("key usage written at shutdown: %d requests", pending)

    async def run(self, every: float) -> None:
        """Flush every ``every`` seconds until cancelled."""
        while True:
            await asyncio.sleep(every)
            try:
                # Shielded: stopping this loop (at shutdown) must not cancel a flush halfway,
                # which would drop the counts it took; the closing flush waits for it instead.
                await asyncio.shield(self.flush())
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not end usage counting for the process
                log.exception("key usage flush failed")


async def _lock_in_order(session: AsyncSession, key_ids: list[str]) -> None:
    """Lock the api_keys rows this flush touches, in key id order, before touching any.

    Every flush takes its rows in the same order, so two processes flushing at once queue
    behind each other rather than deadlock. (SQLite has one writer at a time: no-op there.)
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for start in range(0, len(key_ids), _LOCK_CHUNK):
        chunk = key_ids[start : start + _LOCK_CHUNK]
        stmt = select(ApiKey.id).where(ApiKey.id.in_(chunk)).order_by(ApiKey.id)
        await session.execute(stmt.with_for_update())


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None)
    name = type(orig if orig is not None else exc).__name__
    return f"{name} {state}" if state else name


def _date(day: int) -> date:
    return datetime.fromtimestamp(day * _DAY, UTC).date()


def _datetime(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)
