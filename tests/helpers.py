"""Test helpers that are not factories: counting database statements, polling with a bound."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


class StatementCounter:
    """How many SQL statements an engine ran while the counter was active."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __len__(self) -> int:
        return len(self.statements)


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[StatementCounter]:
    """Record every statement ``engine`` sends to the database inside the block."""
    counter = StatementCounter()

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        counter.statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        yield counter
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)


async def eventually(
    probe: Callable[[], Awaitable[bool]], *, within: float = 5.0, every: float = 0.005
) -> float:
    """Poll ``probe`` until it is true; the seconds it took. Fails after ``within`` seconds."""
    started = time.perf_counter()
    while True:
        if await probe():
            return time.perf_counter() - started
        if time.perf_counter() - started > within:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(every)


class TcpProxy:
    """A loopback TCP relay that can be stopped (cutting every connection) and started again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen (on the same port as before, if it ran already)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and cut every relayed connection."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))


def redis_test_url(database: int) -> str:
    """The shared Redis (127.0.0.1:6379) with a database of the test suite's own.

    Each file that uses Redis owns a database number (11, 12); under pytest-xdist every worker
    moves two numbers up (gw1: 13, 14), so two workers never flush each other's keys."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    offset = 2 * int(worker) if worker.isdigit() else 0
    if database + offset > 15:
        raise RuntimeError("Redis has 16 databases: run the suite with at most two workers")
    return f"redis://127.0.0.1:6379/{database + offset}"
