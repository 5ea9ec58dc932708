"""What one running process owns: engine, sessions, peppers, verifier. Made in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from akener.db.base import utcnow
from akener.db.engine import make_engine, make_sessionmaker
from akener.db.migrate import current_revision, head_revision
from akener.errors import InvalidInput
from akener.keys.events import install_listeners
from akener.keys.peppers import Peppers
from akener.settings import Settings
from akener.verify.cache import KeyCache
from akener.verify.freshness import SqliteChangeWatch, sqlite_path
from akener.verify.hostcounter import HostChangeCounter, open_host_counter
from akener.verify.listener import PgChangeListener, asyncpg_dsn
from akener.verify.retire import DigestRetirer
from akener.verify.service import Verifier
from akener.verify.throttle import FailureThrottle, parse_networks
from akener.verify.usage import UsageRecorder


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
    counter: HostChangeCounter | None = None
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
            if revision != head:
                await engine.dispose()
                raise InvalidInput(
                    f"the database schema is at {revision or 'nothing'}, not {head}; "
                    "run 'akener db upgrade'"
                )
        sessionmaker = make_sessionmaker(engine)
        cache = KeyCache(settings.cache_max_keys, settings.cache_max_unknown)
        usage = UsageRecorder(sessionmaker)
        listener, watch, counter = None, None, None
        fresh: Callable[[], bool] | None = None
        if settings.is_sqlite:
            path = sqlite_path(make_url(settings.database_url).database)
            # An in-memory database lives in this process only: its own commits are all there is.
            watch = SqliteChangeWatch(path, cache) if path is not None else None
            fresh = watch.check if watch is not None else None
        else:
            counter = await open_host_counter(engine, settings.change_counter_dir, cache)
            fresh = counter.check if counter is not None else None
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
            fresh=fresh,
            throttle=FailureThrottle(settings.verify_max_failures, settings.verify_failure_window),
            retirer=DigestRetirer(sessionmaker),
            proxies=parse_networks(settings.trusted_proxies),
            # The hot path reads POSIX seconds; an injected clock (tests) is converted.
            clock=time.time if clock is utcnow else lambda: clock().timestamp(),
        )
        # Forget first, then tell the other processes of this host (before the answer is sent).
        after_change = [verifier.forget] + ([counter.bump] if counter is not None else [])
        install_listeners(sessionmaker, after_change)
        runtime = cls(
            settings,
            engine,
            sessionmaker,
            peppers,
            verifier,
            usage,
            listener,
            watch,
            counter,
            clock=clock,
        )
        if listener is not None:
            await listener.start()
        runtime.tasks.append(
            asyncio.create_task(usage.run(settings.usage_flush_seconds), name="akener-usage")
        )
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
        if self.verifier.retirer is not None:
            await self.verifier.retirer.wait()
        await self.usage.close()
        if self.watch is not None:
            self.watch.close()
        if self.counter is not None:
            self.counter.close()
        await self.engine.dispose()
