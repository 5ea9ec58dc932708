"""What one running process owns: engine, sessions, peppers, verifier. Made in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from akener.db.base import utcnow
from akener.db.engine import begin_write, engine_for, make_sessionmaker
from akener.db.errors import DATABASE_ERRORS, describe
from akener.db.migrate import current_revision, head_revision, is_known_revision
from akener.db.sqlite_file import SqliteFileGuard
from akener.errors import InvalidInput
from akener.events.delivery import Poster
from akener.events.feed import ChangeFeed
from akener.events.sealing import SecretBox
from akener.events.sender import WebhookSender
from akener.installation.service import check_secrets
from akener.keys.events import install_listeners
from akener.keys.expiry import announce_expiries
from akener.keys.peppers import Peppers
from akener.leaks.github import GitHubKeys
from akener.metrics.recorder import ProcessRecorders
from akener.metrics.service import MetricsService
from akener.metrics.snapshot import ProcessSources
from akener.retention import service as retention
from akener.retention.service import RetentionPolicy
from akener.settings import Settings, secret_problem
from akener.verify.cache import KeyCache
from akener.verify.freshness import SqliteChangeWatch, sqlite_path
from akener.verify.hostcounter import HostChangeCounter, open_host_counter
from akener.verify.listener import PgChangeListener, asyncpg_dsn
from akener.verify.refusals import RefusalRecorder
from akener.verify.retire import DigestRetirer
from akener.verify.service import Verifier
from akener.verify.shared import SharedWindows
from akener.verify.throttle import FailureThrottle, parse_networks
from akener.verify.usage import UsageRecorder

log = logging.getLogger("akener")


@dataclass
class Runtime:
    """Per-process resources shared by every request."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    peppers: Peppers
    verifier: Verifier
    usage: UsageRecorder
    box: SecretBox
    sender: WebhookSender
    github_keys: GitHubKeys
    feed: ChangeFeed
    listener: PgChangeListener | None = None
    watch: SqliteChangeWatch | None = None
    guard: SqliteFileGuard | None = None
    counter: HostChangeCounter | None = None
    metrics: MetricsService | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    clock: Callable[[], datetime] = utcnow

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        check_schema: bool = True,
        clock: Callable[[], datetime] = utcnow,
    ) -> Runtime:
        """Open the database and build the verifier; refuse to run on a weak or wrong server
        secret (whatever the entry point: ``akener serve``, the ASGI factory, each worker) and
        on an unmigrated schema."""
        problem = secret_problem(settings)
        if problem:
            raise InvalidInput(problem)
        secrets_by_version = settings.peppers()
        peppers = Peppers.from_secrets(secrets_by_version, settings.secret_key_version)
        path = sqlite_path(make_url(settings.database_url).database) if settings.is_sqlite else None
        if check_schema and path is not None and not path.exists():
            raise InvalidInput(f"no database at {path}; run 'akener db upgrade' or 'akener serve'")
        # The file opened now is the only one this process will ever write to (docs/operations.md).
        guard = SqliteFileGuard(path) if path is not None else None
        engine = engine_for(settings, before_begin=guard.before_begin if guard else None)
        sessionmaker = make_sessionmaker(engine)
        if check_schema:
            try:
                revision, head = await current_revision(engine), head_revision()
                if revision is not None and revision != head and not is_known_revision(revision):
                    # A newer akener migrated it. Migrations only expand before they contract
                    # (docs/operations.md), so this version still works on it during the upgrade.
                    log.warning(
                        "the database schema (%s) is newer than this akener knows (%s); running"
                        " on it during a rolling upgrade; upgrade this host's akener soon",
                        revision,
                        head,
                    )
                elif revision != head:
                    raise InvalidInput(
                        f"the database schema is at {revision or 'nothing'}, not {head}; "
                        "run 'akener db upgrade'"
                    )
                await record_secrets(sessionmaker, secrets_by_version)
            except BaseException:
                await engine.dispose()
                raise
        cache = KeyCache(settings.cache_max_keys, settings.cache_max_unknown)
        usage = UsageRecorder(sessionmaker)
        refusals = RefusalRecorder(sessionmaker)
        listener, watch, counter = None, None, None
        fresh: Callable[[], bool] | None = None
        if settings.is_sqlite:
            # An in-memory database lives in this process only: its own commits are all there is.
            watch = SqliteChangeWatch(path, cache) if path is not None else None
            fresh = watch.check if watch is not None else None
        else:
            counter = await open_host_counter(engine, settings.change_counter_dir, cache)
            fresh = counter.check if counter is not None else None
            listener = PgChangeListener(
                asyncpg_dsn(settings.listen_url),
                cache,
                check_seconds=settings.listener_check_seconds,
                connect_timeout=settings.db_connect_timeout_seconds,
            )
        verifier = Verifier(
            sessionmaker,
            peppers,
            cache=cache,
            usage=usage,
            fresh=_fresh(fresh, guard),
            throttle=FailureThrottle(settings.verify_max_failures, settings.verify_failure_window),
            retirer=DigestRetirer(sessionmaker),
            proxies=parse_networks(settings.trusted_proxies),
            refusals=refusals,
            # The hot path reads POSIX seconds; an injected clock (tests) is converted.
            clock=time.time if clock is utcnow else lambda: clock().timestamp(),
            shared=SharedWindows.from_url(settings.redis_url) if settings.redis_url else None,
            limits_on_store_error=settings.rate_limits_on_store_error,
            credits_on_store_error=settings.credits_on_store_error,
        )
        feed = ChangeFeed(
            sessionmaker,
            postgres=not settings.is_sqlite,
            clock=clock,
            retention=settings.retention_events,
            poll_seconds=settings.changes_poll_seconds,
            watch=_moved(watch.header if watch is not None else counter.value if counter else None),
            degraded=lambda: not cache.trusted,
        )
        if listener is not None:
            listener.on_change = feed.wake
        # Forget first, then tell the other processes of this host (before the answer is sent),
        # then this process's change streams.
        after_change = [verifier.forget] + ([counter.bump] if counter is not None else [])
        after_change.append(feed.wake)
        install_listeners(sessionmaker, after_change)
        box = SecretBox.from_secrets(secrets_by_version, settings.secret_key_version)
        sender = WebhookSender(
            sessionmaker,
            box,
            Poster(
                allow_private=settings.webhooks_allow_private,
                timeout=settings.webhooks_timeout_seconds,
            ),
            clock=clock,
            poll_seconds=settings.webhooks_poll_seconds,
            periodic=announce_expiries,
            lease=timedelta(seconds=settings.webhooks_lease_seconds),
        )
        runtime = cls(
            settings,
            engine,
            sessionmaker,
            peppers,
            verifier,
            usage,
            box,
            sender,
            GitHubKeys(settings.github_scanning_keys_url, settings.github_scanning_keys_file),
            feed,
            listener,
            watch,
            guard,
            counter,
            clock=clock,
        )
        if listener is not None:
            await listener.start()
        if settings.metrics_enabled:
            runtime.metrics = start_metrics(runtime)
        runtime.tasks.append(
            asyncio.create_task(usage.run(settings.usage_flush_seconds), name="akener-usage")
        )
        if guard is not None:
            runtime.tasks.append(asyncio.create_task(guard.run(), name="akener-file-guard"))
        runtime.tasks.append(asyncio.create_task(sender.run(), name="akener-webhooks"))
        runtime.tasks.append(
            asyncio.create_task(
                refusals.run(settings.usage_flush_seconds, verifier.now), name="akener-refusals"
            )
        )
        if settings.prune_interval is not None:
            job = retention.run_periodically(
                sessionmaker, RetentionPolicy.of(settings), settings.prune_interval, clock
            )
            runtime.tasks.append(asyncio.create_task(job, name="akener-prune"))
        return runtime

    async def close(self) -> None:
        """Stop background work, write pending usage, release the database connections."""
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        await self.feed.close()
        await self.sender.poster.close()
        if self.listener is not None:
            await self.listener.close()
        if self.verifier.retirer is not None:
            await self.verifier.retirer.wait()
        if self.verifier.refusals is not None:
            try:
                await self.verifier.refusals.flush()
            except DATABASE_ERRORS as exc:
                log.warning(
                    "could not record refused keys at shutdown: %s (%s)",
                    describe(exc),
                    type(getattr(exc, "orig", None) or exc).__name__,
                )
        try:
            await self.usage.close()
        except DATABASE_ERRORS as exc:  # the database is gone: what is pending cannot be kept
            log.warning("could not write key usage at shutdown: %s", describe(exc))
        if self.verifier.shared is not None:
            await self.verifier.shared.close()
        if self.watch is not None:
            self.watch.close()
        if self.counter is not None:
            self.counter.close()
        if self.metrics is not None:
            self.metrics.publish()  # the last numbers, usage losses included, for the others
        await self.engine.dispose()


def start_metrics(runtime: Runtime) -> MetricsService:
    """This process's recorders and the task that publishes them (docs/metrics.md)."""
    sources = ProcessSources(
        ProcessRecorders(),
        runtime.verifier.cache,
        runtime.usage,
        runtime.engine,
        runtime.listener,
    )
    directory = runtime.settings.metrics_dir
    metrics = MetricsService(sources, Path(directory) if directory else None)
    runtime.tasks.append(asyncio.create_task(metrics.run(), name="akener-metrics"))
    return metrics


SECRETS_WHERE = "the .env (or environment) of every akener process"


async def record_secrets(
    sessionmaker: async_sessionmaker[AsyncSession], secrets_by_version: dict[int, bytes]
) -> None:
    """Check the secrets against the stored fingerprints and record new versions' ones (workers
    starting together may race to insert the same row: the loser checks again)."""
    for attempt in range(3):
        try:
            async with sessionmaker() as session:
                await begin_write(session)
                await check_secrets(session, secrets_by_version, SECRETS_WHERE)
                await session.commit()
                return
        except IntegrityError:
            if attempt == 2:
                raise


def _fresh(
    check: Callable[[], bool] | None, guard: SqliteFileGuard | None
) -> Callable[[], bool] | None:
    """What the verifier asks before a cached answer: the change counter, and that the file
    is still the one opened (a flag the guard's background check sets)."""
    if check is None or guard is None:
        return check
    return lambda: guard.intact and check()


def _moved(read: Callable[[], object] | None) -> Callable[[], bool] | None:
    """True when ``read`` answers something else than the last time (a memory read: SQLite's
    WAL-index header, the host's change counter)."""
    if read is None:
        return None
    seen = [read()]

    def moved() -> bool:
        now = read()
        if now == seen[0]:
            return False
        seen[0] = now
        return True

    return moved
