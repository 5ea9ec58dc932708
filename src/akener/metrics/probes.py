"""Reads made when ``/readyz`` or ``/metrics`` is asked: readiness and the webhook queue.

Both are bounded: every database wait has akener's client-side timeouts (pool, connect, query;
docs/configuration.md), and the whole read is cut at their sum, so neither endpoint ever hangs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from akener.db.errors import DATABASE_ERRORS, RateLimitedLog
from akener.db.migrate import current_revision, head_revision, is_known_revision
from akener.events.models import DeliveryState, WebhookDelivery

log = logging.getLogger("akener.metrics")


@dataclass(frozen=True, slots=True)
class Readiness:
    """What ``/readyz`` answers: ready only when the database answers at the right schema."""

    database: str  # "ok", "unreachable", "timeout" or "replaced" (SQLite file swapped)
    migrations: str  # "current", "newer" (a rolling upgrade), "behind" or "unknown"
    listener: str  # "up", "down" or "none" (SQLite); reported, never decisive

    @property
    def ready(self) -> bool:
        """The database answers and its schema is one this version runs on."""
        return self.database == "ok" and self.migrations in ("current", "newer")

    def body(self) -> dict[str, object]:
        """The JSON answer."""
        return {
            "status": "ready" if self.ready else "not ready",
            "checks": {
                "database": self.database,
                "migrations": self.migrations,
                "listener": self.listener,
            },
        }


@cache
def _head() -> str | None:
    return head_revision()  # reads the migration scripts: once per process


@cache
def _known(revision: str) -> bool:
    return is_known_revision(revision)


def migrations_state(revision: str | None) -> str:
    """ "current", "newer" (written by a newer akener) or "behind" (an upgrade is due)."""
    if revision == _head():
        return "current"
    if revision is not None and not _known(revision):
        return "newer"
    return "behind"


async def readiness(
    engine: AsyncEngine,
    *,
    listener_up: bool | None,
    bound: float,
    warn: RateLimitedLog,
    file_intact: Callable[[], bool] | None = None,
) -> Readiness:
    """Whether this process can serve: one short read of the schema version, at most ``bound``
    seconds. ``listener_up`` None means no listener (SQLite)."""
    listener = "none" if listener_up is None else ("up" if listener_up else "down")
    if file_intact is not None and not file_intact():
        return Readiness("replaced", "unknown", listener)
    try:
        async with asyncio.timeout(bound):
            revision = await current_revision(engine)
    except TimeoutError:
        return Readiness("timeout", "unknown", listener)
    except DATABASE_ERRORS as exc:
        warn.warning("readiness: the database cannot be read", exc)
        return Readiness("unreachable", "unknown", listener)
    return Readiness("ok", migrations_state(revision), listener)


@dataclass(frozen=True, slots=True)
class WebhookQueue:
    """Deliveries not yet delivered: waiting (with the events they carry) and given up."""

    pending: int
    pending_events: int
    failed: int
    oldest_pending_seconds: float


async def webhook_queue(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    bound: float,
    warn: RateLimitedLog,
    now: float | None = None,
) -> WebhookQueue | None:
    """The webhook queue's depth, or None when the database cannot say within ``bound``."""
    pending = WebhookDelivery.state == DeliveryState.PENDING
    try:
        async with asyncio.timeout(bound), sessionmaker() as session:
            waiting = (
                await session.execute(
                    select(
                        func.count(WebhookDelivery.id),
                        func.count(func.distinct(WebhookDelivery.event_id)),
                        func.min(WebhookDelivery.created_at),
                    ).where(pending)
                )
            ).one()
            failed = await session.scalar(
                select(func.count(WebhookDelivery.id)).where(
                    WebhookDelivery.state == DeliveryState.FAILED
                )
            )
    except DATABASE_ERRORS as exc:  # TimeoutError (the bound) is one of them
        warn.warning("metrics: cannot read the webhook queue", exc)
        return None
    oldest = waiting[2]
    age = 0.0 if oldest is None else max(0.0, (now or time.time()) - oldest.timestamp())
    return WebhookQueue(int(waiting[0]), int(waiting[1]), int(failed or 0), age)
