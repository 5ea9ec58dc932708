"""Deleting what has outlived its retention setting (docs/configuration.md, "Retention").

One job, run periodically by every server process (``run_periodically``) and on demand by
``akener db prune``. On PostgreSQL one process prunes at a time (a transaction-level advisory
lock; the others skip that round), so a fleet does not delete the same rows concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from akener.accounts.models import LoginFailure, WebSession
from akener.audit.models import AuditEvent
from akener.db.engine import begin_write
from akener.events.models import DeliveryState, OutboxEvent, WebhookDelivery
from akener.settings import Settings
from akener.verify.models import KeyRefusal, KeyUsage

log = logging.getLogger("akener.retention")

PRUNE_LOCK = 74218114  # beside the migration lock (74218113) in akener.db.migrate
# Failed sign-ins only matter inside the lockout window; a day covers any sane window.
LOGIN_FAILURES_KEPT = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind of row is kept; None keeps it forever (the operator asked for it)."""

    audit_events: timedelta | None
    usage_days: timedelta | None
    ended_sessions: timedelta | None
    events: timedelta | None = None
    login_failures: timedelta = LOGIN_FAILURES_KEPT

    @classmethod
    def of(cls, settings: Settings) -> RetentionPolicy:
        """The AKENER_RETENTION_* settings."""
        return cls(
            audit_events=settings.retention_audit,
            usage_days=settings.retention_usage,
            ended_sessions=settings.retention_sessions,
            events=settings.retention_events,
        )


@dataclass(frozen=True, slots=True)
class PruneResult:
    """How many rows one pruning deleted, per kind."""

    audit_events: int = 0
    usage_days: int = 0
    ended_sessions: int = 0
    login_failures: int = 0
    events: int = 0

    def total(self) -> int:
        """Rows deleted in all."""
        return (
            self.audit_events
            + self.usage_days
            + self.ended_sessions
            + self.login_failures
            + self.events
        )


async def prune(session: AsyncSession, policy: RetentionPolicy, *, now: datetime) -> PruneResult:
    """Delete every row older than its retention, in the caller's transaction.

    Returns an empty result without deleting anything when another process holds the pruning
    lock (PostgreSQL); the caller commits.
    """
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        locked = await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:lock)"), {"lock": PRUNE_LOCK}
        )
        if not locked:
            return PruneResult()
    audit = usage = sessions = 0
    if policy.audit_events is not None:
        cutoff = now - policy.audit_events
        audit = await _delete(session, delete(AuditEvent).where(AuditEvent.occurred_at < cutoff))
    if policy.usage_days is not None:
        # A day's row goes once the whole day is older than the retention.
        first_kept = (now - policy.usage_days).date()
        usage = await _delete(session, delete(KeyUsage).where(KeyUsage.day < first_kept))
        # Refused requests per day and reason go with the accepted ones of the same days.
        usage += await _delete(session, delete(KeyRefusal).where(KeyRefusal.day < first_kept))
    if policy.ended_sessions is not None:
        cutoff = now - policy.ended_sessions
        sessions = await _delete(session, delete(WebSession).where(WebSession.expires_at < cutoff))
    cutoff = now - policy.login_failures
    failures = await _delete(session, delete(LoginFailure).where(LoginFailure.at < cutoff))
    events = 0
    if policy.events is not None:
        events = await _prune_events(session, now - policy.events)
    return PruneResult(audit, usage, sessions, failures, events)


async def _prune_events(session: AsyncSession, cutoff: datetime) -> int:
    """Events older than ``cutoff`` whose deliveries are all done (delivered or given up);
    an event still pending somewhere is kept, whatever its age."""
    pending = select(WebhookDelivery.event_id).where(WebhookDelivery.state == DeliveryState.PENDING)
    old = select(OutboxEvent.id).where(
        OutboxEvent.occurred_at < cutoff, OutboxEvent.id.not_in(pending)
    )
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(old)))
    return await _delete(session, delete(OutboxEvent).where(OutboxEvent.id.in_(old)))


async def _delete(session: AsyncSession, statement: object) -> int:
    result = await session.execute(statement)  # type: ignore[call-overload]
    return int(getattr(result, "rowcount", 0) or 0)


async def prune_once(
    sessionmaker: async_sessionmaker[AsyncSession], policy: RetentionPolicy, *, now: datetime
) -> PruneResult:
    """One pruning in its own transaction."""
    async with sessionmaker() as session:
        await begin_write(session)
        result = await prune(session, policy, now=now)
        await session.commit()
    return result


async def run_periodically(
    sessionmaker: async_sessionmaker[AsyncSession],
    policy: RetentionPolicy,
    every: timedelta,
    clock: Callable[[], datetime],
) -> None:
    """Prune every ``every`` (the first time after a random part of it) until cancelled."""
    # The jitter spreads a fleet that started together over the interval.
    delay = every.total_seconds() * random.uniform(0.5, 1.0)  # noqa: S311 - not a secret
    while True:
        await asyncio.sleep(delay)
        delay = every.total_seconds()
        try:
            result = await prune_once(sessionmaker, policy, now=clock())
        except Exception:  # a failed round (database down) must not end pruning for the process
            log.warning("pruning old rows failed; trying again later", exc_info=True)
            continue
        if result.total():
            log.info(
                "pruned old rows",
                extra={
                    "audit_events": result.audit_events,
                    "usage_days": result.usage_days,
                    "ended_sessions": result.ended_sessions,
                    "login_failures": result.login_failures,
                    "events": result.events,
                },
            )
