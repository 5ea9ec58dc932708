"""PostgreSQL: one LISTEN connection per process that empties cache entries on key changes.

The connection is a raw asyncpg connection of its own (not from the pool, which would hand it to
requests), named ``akener-listener:<pid>`` in ``pg_stat_activity``. While it is up, every
committed key change reaches this process as a notification carrying the key id, and the cache
forgets that key. The moment the connection is lost the cache is emptied and bypassed (requests
are answered from the database); after reconnecting and listening again, the cache starts empty
and is trusted again. Reconnection backs off from 0.1 s to 5 s, with jitter; the refill that
follows costs one database read per distinct key (the verifier's reads are single-flight).
A periodic query on the connection notices a connection that died silently (no FIN, e.g. a
network partition) within about twice ``check_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from akener.keys.events import CHANNEL, read_change_payload
from akener.verify.cache import KeyCache

log = logging.getLogger("akener.verify")

APPLICATION_NAME = "akener-listener"  # in pg_stat_activity, followed by ":<pid>"
BACKOFF_START = 0.1
BACKOFF_MAX = 5.0


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL as a DSN asyncpg understands (driver name dropped)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PgChangeListener:
    """Keeps one LISTEN connection up and the cache's trust in step with it."""

    def __init__(
        self,
        dsn: str,
        cache: KeyCache,
        *,
        check_seconds: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self.cache = cache
        self.check_seconds = check_seconds
        self.connect_timeout = connect_timeout  # AKENER_DB_CONNECT_TIMEOUT_SECONDS
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connects = 0
        # Called after each notification and each reconnect (the change feed reads then).
        self.on_change: Callable[[], None] | None = None

    @property
    def connected(self) -> bool:
        """True while the LISTEN connection is open (changes reach this process)."""
        conn = self._conn
        return conn is not None and not conn.is_closed()

    async def start(self) -> None:
        """Listen before serving (best effort), then keep listening in the background."""
        self.cache.distrust()
        try:
            await self._connect()
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            log.warning("change listener cannot connect yet (%s); cache bypassed", exc)
        self._task = asyncio.create_task(self._run(), name="akener-change-listener")

    async def _connect(self) -> None:
        conn = await asyncpg.connect(
            self.dsn,
            timeout=self.connect_timeout,
            command_timeout=self.connect_timeout,  # LISTEN itself must not hang on a frozen server
            server_settings={"application_name": f"{APPLICATION_NAME}:{os.getpid()}"},
        )
        lost = asyncio.Event()

        def on_terminated(_conn: Any) -> None:
            # asyncpg calls this as soon as it sees the connection closed: stop trusting the
            # cache now, not when the background task next wakes.
            if self._conn is conn:
                self.cache.distrust()
            lost.set()

        try:
            conn.add_termination_listener(on_terminated)
            await conn.add_listener(CHANNEL, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        self._conn, self._lost = conn, lost
        self.connects += 1
        # Whatever changed while nobody listened is unknown: start from an empty cache.
        self.cache.trust()
        if self.on_change is not None:
            self.on_change()

    async def _run(self) -> None:
        backoff = BACKOFF_START
        while True:
            try:
                if self._conn is not None:
                    await self._watch(self._conn)
                    self._drop()
                    log.warning("change listener connection lost; cache bypassed until it is back")
                await self._connect()
                log.info("change listener connected")
                backoff = BACKOFF_START
            except Exception as exc:  # whatever went wrong, never keep trusting the cache
                self._drop()
                if isinstance(exc, TimeoutError | OSError | asyncpg.PostgresError):
                    log.debug("change listener reconnect failed: %s", exc)
                else:
                    log.exception("change listener failed; retrying")
                # Jittered, so the processes of a fleet that lost the database together do not
                # come back (and refill their caches) in lockstep.
                await asyncio.sleep(backoff * random.uniform(0.5, 1.5))  # noqa: S311 -- not a secret
                backoff = min(backoff * 2, BACKOFF_MAX)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return when the connection is lost or stops answering."""
        while not self._lost.is_set():
            try:
                await asyncio.wait_for(self._lost.wait(), self.check_seconds)
                return
            except TimeoutError:
                pass
            try:
                await conn.fetchval("SELECT 1", timeout=self.check_seconds)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return

    def _drop(self) -> None:
        self.cache.distrust()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        # Tolerant of other akener versions' payloads (rolling upgrades, docs/operations.md).
        keys = read_change_payload(payload)
        if keys is None:
            self.cache.clear()
        elif keys:
            self.cache.forget(keys)
        if self.on_change is not None:
            self.on_change()

    async def close(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=2)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()  # the server does not answer: just drop the socket
