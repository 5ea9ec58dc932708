"""The change stream's source: one reader per process of the events outbox, fanned out to every
open stream (docs/verification.md, "The change stream").

The outbox (akener.events.models.OutboxEvent) is the stored, ordered change log. This module
reads it forward and hands every key change to each subscribed stream, and lets a reconnecting
stream resume from a cursor.

Ids grow, but on PostgreSQL they do not commit in order: a transaction may draw id 7, another
id 8 and commit first. A reader that moved past 8 would never look at 7 again. So the reader
remembers every id below the highest one seen that it has not read yet (a *gap*), keeps asking
for the gaps, and gives one up only when it is sure the transaction that drew it has ended
without committing: PostgreSQL's snapshot tells when every transaction running at a moment has
ended (``pg_snapshot_xmin`` passed that moment's ``pg_snapshot_xmax``), and a read after that
either finds the row or proves it will never exist. The resume cursor is the highest id below
every open gap, so a cursor never skips an event that commits late. SQLite serialises writers
(every write transaction holds the write lock from BEGIN to COMMIT), so its ids commit in order
and it has no gaps.

The reader wakes when this process commits a key change, when a PostgreSQL notification arrives,
when another process of this host commits (the host counter, or SQLite's WAL-index header: both
memory reads), and every ``poll_seconds`` in any case. It runs only while a stream is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from akener.accounts.permissions import API_KEYS_VERIFY, Principal
from akener.db.errors import DATABASE_ERRORS, describe
from akener.errors import PermissionDenied, ServiceUnavailable
from akener.events.models import OutboxEvent

log = logging.getLogger("akener.events")

# Outbox events that are not changes of a key (nothing a cache holds moves).
NOT_CHANGES = frozenset(
    {"key.refused", "key.expiring", "key.rate_limited", "key.credits_exhausted"}
)
READ_BATCH = 1000
# How many ids below the highest seen the reader tracks as gaps at most (PostgreSQL): ids drawn
# by transactions that are still open. More than this many at once is not a real workload.
MAX_GAPS = 1000
# A transaction draws its id and takes its transaction id in one statement; a gap is given
# a fence (below) only this long after it was noticed, so the drawer has its transaction id.
FENCE_DELAY = 0.2
# How often the reader looks again while a gap is open or the listener is down (seconds).
FAST_POLL = 0.1
_CURSOR_RE = re.compile(r"([0-9]{1,18})-([0-9]{1,12})")


@dataclass(frozen=True, slots=True)
class Change:
    """One change of one key, as the stream tells it (never a secret, digest or value)."""

    event_id: int
    key_id: str
    change: str  # "created", "updated", "activated", "deactivated", "rotated", "deleted", …
    fields: tuple[str, ...]  # for "updated": which fields changed (names only)
    occurred_at: datetime

    def as_json(self) -> dict[str, Any]:
        """The ``change`` event's data."""
        return {
            "key_id": self.key_id,
            "change": self.change,
            "fields": list(self.fields),
            "occurred_at": self.occurred_at.isoformat(),
        }


def change_of(
    event_id: int, type_: str, key_id: str | None, payload: Any, at: datetime
) -> Change | None:
    """The change an outbox row describes; None for rows that are not key changes."""
    if key_id is None or not type_.startswith("key.") or type_ in NOT_CHANGES:
        return None
    fields: tuple[str, ...] = ()
    data = payload.get("data") if isinstance(payload, dict) else None
    changes = data.get("changes") if isinstance(data, dict) else None
    if isinstance(changes, dict):
        fields = tuple(sorted(str(name) for name in changes))
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return Change(event_id, key_id, type_.removeprefix("key."), fields, at)


def encode_cursor(event_id: int, at: datetime) -> str:
    """``<id>-<seconds>``: every change up to ``id`` was handed out, as of ``at``."""
    return f"{event_id}-{int(at.timestamp())}"


def parse_cursor(value: str) -> tuple[int, datetime] | None:
    """(id, when) of a cursor this module made; None for anything else."""
    found = _CURSOR_RE.fullmatch(value.strip())
    if found is None:
        return None
    return int(found.group(1)), datetime.fromtimestamp(int(found.group(2)), UTC)


@dataclass(slots=True)
class Item:
    """What a subscription receives: a change, a reset, its own key changed, or the end."""

    kind: str  # "change" | "reset" | "own" | "end"
    change: Change | None = None
    cursor: str = ""
    reason: str = ""


@dataclass(eq=False)
class Subscription:
    """One open stream's view of the feed."""

    key_id: str
    max_queue: int
    queue: asyncio.Queue[Item] = field(default_factory=asyncio.Queue)
    # Set by subscribe: what to send before ``ready``.
    reset_reason: str | None = None
    backlog: list[Change] = field(default_factory=list)
    ready_cursor: str = ""
    replayed: set[int] = field(default_factory=set)
    ended: bool = False

    def push(self, item: Item) -> None:
        """Queue ``item``; a stream that fell too far behind gets one reset instead."""
        if self.ended:
            return
        if item.kind == "end":
            self.ended = True
        elif self.queue.qsize() >= self.max_queue:
            while not self.queue.empty():
                self.queue.get_nowait()
            item = Item("reset", cursor=item.cursor, reason="fell behind")
        self.queue.put_nowait(item)

    async def next(self, wait: float) -> Item | None:
        """The next item, or None after ``wait`` seconds without one."""
        try:
            return await asyncio.wait_for(self.queue.get(), wait)
        except TimeoutError:
            return None


@dataclass(slots=True)
class _Gap:
    noticed: float  # monotonic
    fence: int | None = None  # every transaction below this id had started when it was set


_SNAPSHOT = text(
    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint,"
    " pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
)
_COLUMNS = select(
    OutboxEvent.id,
    OutboxEvent.type,
    OutboxEvent.key_id,
    OutboxEvent.payload,
    OutboxEvent.occurred_at,
)
_NEWEST = select(func.max(OutboxEvent.id))


class ChangeFeed:
    """Reads the outbox forward once per process and hands changes to every subscription."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        postgres: bool,
        clock: Callable[[], datetime],
        retention: timedelta | None,
        poll_seconds: float = 1.0,
        tick: float = 0.02,
        watch: Callable[[], bool] | None = None,
        degraded: Callable[[], bool] | None = None,
        max_backlog: int = 10_000,
        max_queue: int = 10_000,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.postgres = postgres
        self.clock = clock
        self.retention = retention
        self.poll_seconds = poll_seconds
        self.tick = tick
        self._watch = watch  # True when another process may have committed (a memory read)
        self._degraded = degraded  # True while notifications may be missed (listener down)
        self.max_backlog = max_backlog
        self.max_queue = max_queue
        self._subs: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._started = False
        self._high = 0  # highest id read
        self._gaps: dict[int, _Gap] = {}
        self._closed = False
        self.polls = 0  # database reads made (tests count them)

    @property
    def subscribers(self) -> int:
        """How many streams are open in this process."""
        return len(self._subs)

    def safe_id(self) -> int:
        """Every change with an id up to this one was read (none can still commit)."""
        return min(self._gaps) - 1 if self._gaps else self._high

    def cursor(self) -> str:
        """The resume cursor of a stream that has received everything handed out so far."""
        return encode_cursor(self.safe_id(), self.clock())

    def wake(self, _key_ids: object = None) -> None:
        """Something may have been committed: read soon (safe from any callback)."""
        self._wake.set()

    async def subscribe(self, key_id: str, last_event_id: str | None) -> Subscription:
        """A new subscription for a stream authenticated by ``key_id``, resuming after
        ``last_event_id`` when it is given; ServiceUnavailable when the log cannot be read."""
        if self._closed:
            raise ServiceUnavailable("akener is shutting down")
        async with self._lock:
            if not self._started:
                await self._start()
        sub = Subscription(key_id, self.max_queue)
        self._subs.add(sub)
        try:
            cursor = self.cursor()
            if last_event_id is not None:
                await self._resume(sub, last_event_id)
            sub.ready_cursor = cursor
        except BaseException:
            self._subs.discard(sub)
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """The stream ended."""
        self._subs.discard(sub)
        sub.ended = True

    async def _resume(self, sub: Subscription, last_event_id: str) -> None:
        parsed = parse_cursor(last_event_id)
        if parsed is None:
            sub.reset_reason = "unknown cursor"
            return
        after, issued = parsed
        if self.retention is not None:
            # Events a cursor this old may have missed can have been pruned since.
            margin = min(timedelta(hours=1), self.retention / 2)
            if issued < self.clock() - self.retention + margin:
                sub.reset_reason = "cursor too old"
                return
        rows, newest = await self._read_after(after)
        if after > newest and after > self._high:
            sub.reset_reason = "unknown cursor"  # from another database, or ids were reused
        elif len(rows) > self.max_backlog:
            sub.reset_reason = "too many changes missed"
        else:
            sub.backlog = [c for c in rows if c is not None]
            sub.replayed = {c.event_id for c in sub.backlog}

    async def _read_after(self, after: int) -> tuple[list[Change | None], int]:
        try:
            async with self._sessionmaker() as session:
                result = await session.execute(
                    _COLUMNS.where(OutboxEvent.id > after)
                    .order_by(OutboxEvent.id)
                    .limit(self.max_backlog + 1)
                )
                rows = [change_of(*row) for row in result.all()]
                newest = await session.scalar(_NEWEST)
        except DATABASE_ERRORS as exc:
            raise ServiceUnavailable(f"cannot read the change log: {describe(exc)}") from exc
        return rows, int(newest or 0)

    async def _start(self) -> None:
        """Begin at the newest event; on PostgreSQL, ids just below it may still commit."""
        try:
            async with self._sessionmaker() as session:
                high = int(await session.scalar(_NEWEST) or 0)
                present: set[int] = set()
                if self.postgres and high:
                    found = await session.scalars(
                        select(OutboxEvent.id).where(OutboxEvent.id > max(0, high - MAX_GAPS))
                    )
                    present = {int(i) for i in found}
        except DATABASE_ERRORS as exc:
            raise ServiceUnavailable(f"cannot read the change log: {describe(exc)}") from exc
        now = time.monotonic()
        self._high = high
        self._gaps = {}
        if self.postgres:
            low = max(1, high - MAX_GAPS + 1)
            self._gaps = {i: _Gap(now) for i in range(low, high) if i not in present}
        self._started = True
        self._task = asyncio.create_task(self._run(), name="akener-change-feed")

    async def _run(self) -> None:
        last = time.monotonic()
        try:
            while self._subs:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.tick)
                woken = self._wake.is_set()
                self._wake.clear()
                now = time.monotonic()
                interval = self.poll_seconds
                if self._gaps or (self._degraded is not None and self._degraded()):
                    interval = min(interval, FAST_POLL)
                moved = self._watch() if self._watch is not None else False
                if woken or moved or now - last >= interval:
                    last = now
                    await self._poll(now)
        except DATABASE_ERRORS as exc:
            log.warning("cannot read the change log (%s); open change streams end", describe(exc))
        except Exception:
            log.exception("the change feed failed; open change streams end")
        finally:
            self._stop("unavailable")

    def _stop(self, reason: str) -> None:
        for sub in list(self._subs):
            sub.push(Item("end", reason=reason))
        self._subs.clear()
        self._started = False
        self._task = None
        self._gaps.clear()

    async def _poll(self, now: float) -> None:
        """Read what committed since the last read (and the open gaps), hand it out."""
        self.polls += 1
        async with self._sessionmaker() as session:
            xmin = xmax = 0
            if self.postgres:
                xmin, xmax = (await session.execute(_SNAPSHOT)).one()
            changes: list[Change] = []
            found: set[int] = set()
            while True:
                wanted = OutboxEvent.id > self._high
                if self._gaps:
                    wanted = or_(wanted, OutboxEvent.id.in_(sorted(self._gaps)))
                statement = _COLUMNS.where(wanted).order_by(OutboxEvent.id).limit(READ_BATCH)
                rows = (await session.execute(statement)).all()
                for row in rows:
                    self._note(int(row[0]), now)
                    found.add(int(row[0]))
                    change = change_of(*row)
                    if change is not None:
                        changes.append(change)
                if len(rows) < READ_BATCH:
                    break
        self._settle_gaps(now, xmin, xmax, found)
        self._hand_out(changes)

    def _note(self, event_id: int, now: float) -> None:
        if self._gaps.pop(event_id, None) is not None or event_id <= self._high:
            return
        if self.postgres:
            for missing in range(max(self._high + 1, event_id - MAX_GAPS), event_id):
                self._gaps[missing] = _Gap(now)
            while len(self._gaps) > MAX_GAPS:
                del self._gaps[min(self._gaps)]
        self._high = event_id

    def _settle_gaps(self, now: float, xmin: int, xmax: int, found: set[int]) -> None:
        """Give up the gaps whose transactions have all ended without committing."""
        for event_id, gap in list(self._gaps.items()):
            if gap.fence is None:
                if now - gap.noticed >= FENCE_DELAY:
                    gap.fence = xmax  # taken by this poll, after the delay
            elif xmin >= gap.fence and event_id not in found:
                del self._gaps[event_id]

    def _hand_out(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        cursor = self.cursor()
        for sub in list(self._subs):
            for change in changes:
                sub.push(Item("change", change, cursor))
                if change.key_id == sub.key_id:
                    sub.push(Item("own", change, cursor))

    def stop_streams(self) -> None:
        """End every stream and refuse new ones: the process is stopping."""
        self._closed = True
        for sub in list(self._subs):
            sub.push(Item("end", reason="shutting down"))

    async def close(self) -> None:
        """End every stream and stop reading (shutdown)."""
        self._closed = True
        task = self._task
        self._stop("shutting down")
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def subscribe_changes(
    feed: ChangeFeed, actor: Principal, last_event_id: str | None
) -> Subscription:
    """Open a change stream for a key holding ``api_keys.verify``."""
    actor.require(API_KEYS_VERIFY)
    if actor.kind != "key":
        raise PermissionDenied("the change stream is for keys")
    return await feed.subscribe(actor.id, last_event_id)
