"""A clean stop under load on PostgreSQL with several workers writes every usage count."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from akener.keys.models import ApiKey
from akener.runtime import Runtime
from akener.settings import Settings
from akener.verify.models import KeyUsage
from tests.conftest import TEST_SECRET
from tests.factories import bearer, make_key
from tests.servers import AkenerServer, akener_env


async def _load(url: str, keys: list[str], stop: asyncio.Event, served: list[int]) -> None:
    """Ask ``/authz`` with each key in turn until ``stop``; count the 200s received."""
    async with httpx.AsyncClient(timeout=5) as client:
        i = 0
        while not stop.is_set():
            try:
                answer = await client.get(url + "/authz", headers=bearer(keys[i % len(keys)]))
            except httpx.TransportError:
                await asyncio.sleep(0.01)  # the server is going away: nothing was served
                continue
            if answer.status_code == 200:
                served[0] += 1
            i += 1


@pytest.mark.postgres_only
@pytest.mark.parametrize("run", range(3))
async def test_sigterm_under_load_writes_every_usage_count(
    settings: Settings, tmp_path: Path, backend: str, run: int
) -> None:
    direct = await Runtime.start(settings)
    try:
        made = [await make_key(direct, f"load{i}", scopes=[]) for i in range(6)]
    finally:
        await direct.close()
    keys = [key for _, key in made]
    # A short flush interval: flushes of both workers overlap on the same rows while loaded.
    env = akener_env(settings.database_url, TEST_SECRET, AKENER_USAGE_FLUSH_SECONDS="0.2")
    served = [0]
    stop = asyncio.Event()
    with AkenerServer(env, tmp_path / "s", workers=2) as server:
        assert server.process is not None
        loaders = [asyncio.create_task(_load(server.url, keys, stop, served)) for _ in range(16)]
        for _ in range(200):  # under load: until both workers have served a fair number
            if served[0] >= 150:
                break
            await asyncio.sleep(0.05)
        server.process.send_signal(signal.SIGTERM)
        exited = await asyncio.to_thread(server.process.wait, 30)
        stop.set()
        await asyncio.gather(*loaders)
    assert exited == 0, server.log_text()
    assert served[0] >= 150
    direct = await Runtime.start(settings)
    try:
        async with direct.sessionmaker() as session:
            total = await session.scalar(select(func.sum(ApiKey.request_count)))
            by_day = await session.scalar(select(func.sum(KeyUsage.count)))
    finally:
        await direct.close()
    assert (total, by_day) == (served[0], served[0]), server.log_text()
