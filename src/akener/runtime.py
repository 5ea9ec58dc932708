"""What one running process owns: engine, sessions, peppers, verifier. Made in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from akener.db.base import utcnow
from akener.db.engine import make_engine, make_sessionmaker
from akener.db.migrate import current_revision, head_revision, is_known_revision
from akener.errors import InvalidInput
from akener.keys.events import install_listeners
from akener.keys.peppers import Peppers
from akener.retention import service as retention
from akener.retention.service import RetentionPolicy
from akener.settings import Settings
from akener.verify.cache import KeyCache
from akener.verify.freshness import SqliteChangeWatch, sqlite_path
from akener.verify.listener import PgChangeListener, asyncpg_dsn
from akener.verify.service import Verifier
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
    listener: PgChangeListener | None = None
    watch: SqliteChangeWatch | None = None
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
        """Open the database and build the verifier; refuse to run on an unmigrated schema."""
        secrets_by_version = settings.peppers()
        if settings.secret_key_version not in secrets_by_version:
            raise InvalidInput("AKENER_SECRET_KEY is not set")
        peppers = Peppers.from_secrets(secrets_by_version, settings.secret_key_version)
        engine = make_engine(settings.database_url)
        if check_schema:
            revision, head = await current_revision(engine), head_revision()
            if revision is not None and revision != head and not is_known_revision(revision):
                # A newer akener migrated it. Migrations only expand before they contract
                # (docs/operations.md), so this version still works on it during the upgrade.
                log.warning(
                    "the database schema (%s) is newer than this akener knows (%s); running on "
                    "it during a rolling upgrade; upgrade this host's akener soon",
                    revision,
                    head,
                )
            elif revision != head:
                await engine.dispose()
                raise InvalidInput(
                    f"the database schema is at {revision or 'nothing'}, not {head}; "
                    "run 'akener db upgrade'"
                )
        sessionmaker = make_sessionmaker(engine)
        cache = KeyCache(settings.cache_max_keys, settings.cache_max_unknown)
        usage = UsageRecorder(sessionmaker)
        listener, watch = None, None
        if settings.is_sqlite:
            path = sqlite_path(make_url(settings.database_url).database)
            # An in-memory database lives in this process only: its own commits are all there is.
            watch = SqliteChangeWatch(path, cache) if path is not None else None
        else:
            listener = PgChangeListener(
                asyncpg_dsn(settings.database_url),
                cache,
                check_seconds=settings.listener_check_seconds,
            )
        verifier = Verifier(
            sessionmaker,
            peppers,
            cache=cache,
            usage=usage,
            fresh=watch.check if watch is not None else None,
            # The hot path reads POSIX seconds; an injected clock (tests) is converted.
            clock=time.time if clock is utcnow else lambda: clock().timestamp(),
        )
        install_listeners(sessionmaker, [verifier.forget])
        runtime = cls(
            settings, engine, sessionmaker, peppers, verifier, usage, listener, watch, clock=clock
        )
        if listener is not None:
            await listener.start()
        runtime.tasks.append(
            asyncio.create_task(usage.run(settings.usage_flush_seconds), name="akener-usage")
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
        if self.listener is not None:
            await self.listener.close()
        await self.usage.flush()
        if self.watch is not None:
            self.watch.close()
        await self.engine.dispose()
