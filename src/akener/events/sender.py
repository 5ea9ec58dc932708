"""The one sender of the fleet: delivers due webhook deliveries, at least once, with retries.

Which process sends is decided by a lease row (``sender_leases``): a process takes it when it
has run out and renews it while it works. A lease needs no session-level state on the database
connection, so it works through PgBouncer in transaction mode and across hosts; a process that
dies (``kill -9``) simply stops renewing, and another takes over when the lease runs out.

Each round reads due deliveries, posts them outside any transaction, then records the outcomes.
A crash or a database outage between posting and recording leaves the delivery pending, so it
is sent again: receivers see each event at least once and deduplicate by ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from akener.db.base import UTCDateTime, utcnow
from akener.db.engine import begin_write
from akener.db.errors import RateLimitedLog, is_database_error
from akener.events.delivery import Outcome, Poster
from akener.events.models import (
    DeliveryState,
    OutboxEvent,
    SenderLease,
    WebhookDelivery,
    WebhookEndpoint,
)
from akener.events.outbox import MAX_PAYLOAD_BYTES
from akener.events.sealing import SealError, SecretBox

log = logging.getLogger("akener.events")

# Wait after failed attempt n (1-based); after the last one the delivery gives up. The waits
# add up to about 23.7 hours: a receiver down for most of a day still gets everything.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=8),
)
LEASE_NAME = "webhooks"
LEASE = timedelta(seconds=30)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CREATE_LEASE = text(
    "INSERT INTO sender_leases (name, holder, expires_at) VALUES (:name, '', :epoch) "
    "ON CONFLICT (name) DO NOTHING"
).bindparams(bindparam("epoch", type_=UTCDateTime()))
Periodic = Callable[[AsyncSession, datetime], Awaitable[None]]


def next_attempt(attempts: int, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed attempts; None once the schedule is used up."""
    if attempts > len(RETRY_SCHEDULE):
        return None
    return now + RETRY_SCHEDULE[attempts - 1]


@dataclass(frozen=True, slots=True)
class Job:
    """A delivery read from the database, ready to sign and post."""

    delivery_id: str
    endpoint_id: str
    attempts: int
    url: str
    body: bytes
    secrets: tuple[str, ...]


def sign(secrets: tuple[str, ...], msg_id: str, when: datetime, body: str) -> str:
    """The ``webhook-signature`` header: one ``v1,…`` per secret, space separated."""
    return " ".join(Webhook(s).sign(msg_id, when, body) for s in secrets)


class WebhookSender:
    """Runs in every server process; sends only while it holds the lease."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        box: SecretBox,
        poster: Poster,
        *,
        clock: Callable[[], datetime] = utcnow,
        poll_seconds: float = 1.0,
        batch: int = 50,
        periodic: Periodic | None = None,
        periodic_every: timedelta = timedelta(minutes=1),
        lease: timedelta = LEASE,
    ) -> None:
        self.lease = lease
        self.sessionmaker = sessionmaker
        self.box = box
        self.poster = poster
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.periodic = periodic
        self.periodic_every = periodic_every
        self.holder = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held_until: datetime | None = None
        self.last_periodic: datetime | None = None
        self.wake = asyncio.Event()
        self._db_warn = RateLimitedLog(log)

    async def run(self) -> None:
        """Send until cancelled; a failed round (database down) is logged and retried."""
        while True:
            try:
                sent = await self.step()
            except Exception as exc:
                self.held_until = None
                if is_database_error(exc):  # an outage: one line per 10 s, no traceback
                    self._db_warn.warning("webhook sender waits for the database", exc)
                else:
                    log.warning("webhook sender round failed; trying again", exc_info=True)
                sent = 0
            if sent < self.batch:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.poll_seconds)

    async def step(self) -> int:
        """One round: hold the lease, run the periodic job when due, deliver what is due."""
        now = self.clock()
        if not await self._any_endpoint():
            return 0  # nothing to announce or deliver: no write, no lease (SQLite stays free)
        if not await self.hold_lease(now):
            return 0
        if self.periodic is not None and (
            self.last_periodic is None or now - self.last_periodic >= self.periodic_every
        ):
            async with self.sessionmaker() as session:
                await begin_write(session)
                await self.periodic(session, now)
                await session.commit()
            self.last_periodic = now
        return await self.deliver_due(now)

    async def _any_endpoint(self) -> bool:
        """True when at least one webhook endpoint is registered (a read, never a write)."""
        async with self.sessionmaker() as session:
            found = await session.scalar(select(WebhookEndpoint.id).limit(1))
        return found is not None

    async def hold_lease(self, now: datetime) -> bool:
        """Take or renew the lease; True while this process is the sender."""
        if self.held_until is not None and now < self.held_until - self.lease / 2:
            return True
        async with self.sessionmaker() as session:
            await begin_write(session)
            await session.execute(_CREATE_LEASE, {"name": LEASE_NAME, "epoch": EPOCH})
            result = await session.execute(
                update(SenderLease)
                .where(SenderLease.name == LEASE_NAME)
                .where((SenderLease.holder == self.holder) | (SenderLease.expires_at < now))
                .values(holder=self.holder, expires_at=now + self.lease)
            )
            await session.commit()
        held = bool(getattr(result, "rowcount", 0))
        self.held_until = now + self.lease if held else None
        return held

    async def deliver_due(self, now: datetime | None = None) -> int:
        """Post every due delivery (up to a batch) and record what happened; returns how many."""
        now = now or self.clock()
        jobs = await self._due(now)
        if not jobs:
            return 0
        queues: dict[str, list[Job]] = {}
        for job in jobs:
            queues.setdefault(job.endpoint_id, []).append(job)
        # Endpoints in parallel; each endpoint's events one after another, in event order.
        done = await asyncio.gather(*(self._send_in_order(queue) for queue in queues.values()))
        async with self.sessionmaker() as session:
            await begin_write(session)
            for job, outcome in (pair for pairs in done for pair in pairs):
                await self._record(session, job, outcome, now)
            await session.commit()
        return len(jobs)

    async def _send_in_order(self, queue: list[Job]) -> list[tuple[Job, Outcome]]:
        """Post one endpoint's jobs in order, stopping at its first failure: the rest wait for
        the next round untried, so a dead receiver costs one timeout per round."""
        done = []
        for job in queue:
            outcome = await self._send(job)
            done.append((job, outcome))
            if not outcome.ok:
                break
        return done

    async def _due(self, now: datetime) -> list[Job]:
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(WebhookDelivery, OutboxEvent, WebhookEndpoint)
                    .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
                    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                    .where(WebhookDelivery.state == DeliveryState.PENDING)
                    # A delivery never tried is due at once, whatever clock wrote it.
                    .where(
                        or_(WebhookDelivery.attempts == 0, WebhookDelivery.next_attempt_at <= now)
                    )
                    .order_by(WebhookDelivery.event_id, WebhookDelivery.id)
                    .limit(self.batch)
                )
            ).all()
            jobs = []
            for delivery, event, endpoint in rows:
                body = json.dumps(event.payload, separators=(",", ":"), sort_keys=True)
                try:
                    secrets = self._secrets(endpoint, now)
                except SealError as exc:
                    log.error("webhook %s: %s", endpoint.id, exc)
                    secrets = ()
                jobs.append(
                    Job(
                        delivery.id,
                        endpoint.id,
                        delivery.attempts,
                        endpoint.url,
                        body.encode(),
                        secrets,
                    )
                )
            return jobs

    def _secrets(self, endpoint: WebhookEndpoint, now: datetime) -> tuple[str, ...]:
        found = [self.box.open(endpoint.sealed_secret, endpoint.secret_version)]
        until = endpoint.previous_secret_until
        if endpoint.previous_sealed_secret and until is not None and now < until:
            version = endpoint.previous_secret_version or endpoint.secret_version
            found.append(self.box.open(endpoint.previous_sealed_secret, version))
        return tuple(found)

    async def _send(self, job: Job) -> Outcome:
        if not job.secrets:
            return Outcome(None, "the signing secret cannot be opened (server secret missing)")
        if len(job.body) > MAX_PAYLOAD_BYTES:
            return Outcome(None, f"payload larger than {MAX_PAYLOAD_BYTES} bytes; not sent")
        msg_id = f"msg_{job.delivery_id}"
        # The header carries the real sending time: receivers compare it with their own clock.
        sent_at = datetime.now(UTC)
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": sign(job.secrets, msg_id, sent_at, job.body.decode()),
            "User-Agent": "akener-webhooks",
        }
        return await self.poster.post(job.url, headers, job.body)

    async def _record(
        self, session: AsyncSession, job: Job, outcome: Outcome, now: datetime
    ) -> None:
        attempts = job.attempts + 1
        values: dict[str, object] = {
            "attempts": attempts,
            "last_attempt_at": now,
            "last_status": outcome.status,
            "last_error": outcome.error,
        }
        if outcome.ok:
            values |= {"state": DeliveryState.DELIVERED, "delivered_at": now}
        else:
            retry = next_attempt(attempts, now)
            values |= {"next_attempt_at": retry} if retry else {"state": DeliveryState.FAILED}
        # Only a delivery still as it was read: a resend or a delete meanwhile wins.
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == job.delivery_id)
            .where(WebhookDelivery.state == DeliveryState.PENDING)
            .where(WebhookDelivery.attempts == job.attempts)
            .values(**values)
        )
