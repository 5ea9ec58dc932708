"""Rate-limit windows shared through Redis (AKENER_REDIS_URL).

The shared Redis on 127.0.0.1:6379 is used with database 11 only (flushed here, nothing else);
tests that stop Redis start their own redis-server on a free port.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from akener.app import AkenerApp
from akener.keys.limits import Window
from akener.settings import Settings
from akener.verify.limiter import Rule
from akener.verify.shared import RETRY_AFTER_ERROR, SharedWindows, StoreError
from tests.factories import bearer, make_key
from tests.helpers import redis_test_url
from tests.servers import free_port

SHARED_URL = redis_test_url(11)
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@pytest.fixture
async def fleet() -> AsyncIterator[list[SharedWindows]]:
    """Four independent counters (each its own Redis connection), as four processes have."""
    cleaner = Redis.from_url(SHARED_URL)
    await cleaner.flushdb()
    members = [SharedWindows.from_url(SHARED_URL) for _ in range(4)]
    yield members
    for member in members:
        await member.close()
    await cleaner.flushdb()
    await cleaner.aclose()


async def _wait_for_window_start(period: int) -> None:
    # Redis runs on this host: its clock is this clock. Start just after a boundary.
    into = time.time() % period
    if into > 0.2:
        await asyncio.sleep(period - into + 0.01)


async def _offer(member: SharedWindows, rule: Rule, count: int) -> int:
    admitted = 0
    for i in range(count):
        wait, _ = await member.take((rule,))
        admitted += wait is None
        if i % 50 == 0:
            await asyncio.sleep(0)  # let the other "processes" interleave
    return admitted


async def test_four_processes_share_a_large_window_within_five_percent(
    fleet: list[SharedWindows],
) -> None:
    limit, period = 10_000, 10
    rule = Rule("k:accuracy", Window("requests", limit, period))
    await _wait_for_window_start(period)
    counts = await asyncio.gather(*(_offer(m, rule, 3 * limit // 4) for m in fleet))
    admitted = sum(counts)
    assert limit * 0.95 <= admitted <= limit, counts
    trips = sum(m.round_trips for m in fleet)
    assert trips < 3 * limit / 20, "large limits are leased, not a round trip per request"


async def test_four_processes_share_a_small_window_exactly(fleet: list[SharedWindows]) -> None:
    limit, period = 50, 10
    rule = Rule("k:small", Window("requests", limit, period))
    await _wait_for_window_start(period)
    counts = await asyncio.gather(*(_offer(m, rule, 40) for m in fleet))
    assert sum(counts) == limit


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    """A redis-server of this test's own, on a free port; the list holds the running one."""
    port = free_port()
    running: list[subprocess.Popen[bytes]] = []
    yield port, running
    for process in running:
        process.kill()
        process.wait()


def start_redis(port: int, running: list[subprocess.Popen[bytes]], workdir: Path) -> None:
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    running.append(process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout:
            return
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def stop_redis(running: list[subprocess.Popen[bytes]]) -> None:
    process = running.pop()
    process.kill()
    process.wait()


async def test_redis_down_follows_the_setting_and_recovers_without_restart(
    settings: Settings,
    own_redis: tuple[int, list[subprocess.Popen[bytes]]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port, running = own_redis
    start_redis(port, running, tmp_path)
    app = AkenerApp(settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"}))
    async with app.running():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as web:
            _, admin = await make_key(app.runtime, "admin")
            made = await web.post(
                "/api/v1/keys",
                json={"name": "three", "rate_limits": [{"name": "r", "limit": 3,
                                                      "period_seconds": 86400}]},
                headers=bearer(admin),
            )  # fmt: skip
            key = made.json()["key"]
            codes = [(await web.get("/authz", headers=bearer(key))).status_code for _ in range(2)]
            assert codes == [200, 200]
            stop_redis(running)
            # allow (the default): a rate-limited key passes while Redis is down; one warning.
            down = [(await web.get("/authz", headers=bearer(key))).status_code for _ in range(5)]
            assert down == [200] * 5
            warnings = [r for r in caplog.records if "Redis" in r.getMessage()]
            assert len(warnings) == 1
            # Redis comes back empty (it keeps nothing on disk): counting starts again.
            start_redis(port, running, tmp_path)
            await asyncio.sleep(RETRY_AFTER_ERROR + 0.1)
            back = [(await web.get("/authz", headers=bearer(key))).status_code for _ in range(4)]
            assert back == [200, 200, 200, 429]
            app.runtime.verifier.limits_on_store_error = "deny"
            other = await web.post(
                "/api/v1/keys",
                json={"name": "other", "rate_limits": [{"name": "r", "limit": 3,
                                                        "period_seconds": 86400}]},
                headers=bearer(admin),
            )  # fmt: skip
            stop_redis(running)
            denied = await web.get("/authz", headers=bearer(other.json()["key"]))
            assert denied.status_code == 503


async def test_a_store_error_is_raised_quickly_while_redis_is_down(tmp_path: Path) -> None:
    shared = SharedWindows.from_url(f"redis://127.0.0.1:{free_port()}/0")
    rule = Rule("k:x", Window("r", 5, 60))
    started = time.monotonic()
    with pytest.raises(StoreError):
        await shared.take((rule,))
    with pytest.raises(StoreError):  # within RETRY_AFTER_ERROR: not even tried
        await shared.take((rule,))
    assert shared.round_trips == 1
    assert time.monotonic() - started < 2
    await shared.close()
