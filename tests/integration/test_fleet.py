"""A fleet on one PostgreSQL: each process holds at most AKENER_DB_POOL_SIZE + 1 connections.

Every background task (usage flush, refusal recording, webhook sender, pruning, secret
retirement) borrows from the process's pool; only the change listener has a connection of its
own. ``pg_stat_activity`` is sampled while a mixed load runs and must show nothing else.
The slow test starts 24 processes on a cluster of its own with ``max_connections = 100``.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from akener.runtime import Runtime
from akener.settings import Settings
from akener.verify.listener import asyncpg_dsn
from tests import pgcluster
from tests.conftest import LOCAL_NOWHERE, TEST_SECRET
from tests.factories import bearer, make_key
from tests.fleet import (
    ConnectionSampler,
    ForkedFleet,
    mixed_load,
    owner_pid,
    revoke_across,
)
from tests.pgcluster import PgCluster
from tests.servers import AkenerServer, akener_cli, akener_env, free_port, process_tree

BUSY_BACKGROUND = {
    "AKENER_USAGE_FLUSH_SECONDS": "0.2",
    "AKENER_WEBHOOKS_POLL_SECONDS": "0.1",
    "AKENER_WEBHOOKS_ALLOW_PRIVATE": "true",
    "AKENER_PRUNE_INTERVAL": "1s",
}


@pytest.mark.postgres_only
async def test_each_process_holds_at_most_pool_size_plus_one_connections(
    settings: Settings, tmp_path: Path, backend: str
) -> None:
    direct = await Runtime.start(settings)
    try:
        _, admin = await make_key(direct, "admin")
        keys = [(await make_key(direct, f"k{i}", scopes=[]))[1] for i in range(8)]
    finally:
        await direct.close()
    database = make_url(settings.database_url).database or ""
    # The default pool size (2) is what is checked: no AKENER_DB_POOL_SIZE in the environment.
    env = akener_env(settings.database_url, TEST_SECRET, **BUSY_BACKGROUND)
    with AkenerServer(env, tmp_path / "w", workers=2) as server:
        assert server.process is not None
        async with httpx.AsyncClient(timeout=30) as client:
            # A receiver nobody listens on: the sender takes its lease, tries, records retries.
            hook = await client.post(
                server.url + "/api/v1/webhooks",
                headers=bearer(admin),
                json={"url": f"http://127.0.0.1:{free_port()}/hook", "events": ["key.created"]},
            )
            assert hook.status_code == 201, hook.text
        stop = asyncio.Event()
        with ConnectionSampler(asyncpg_dsn(settings.database_url), database) as sampler:
            load = asyncio.create_task(
                mixed_load([server.url], admin, keys, stop, verifiers=8, writers=16)
            )
            await asyncio.sleep(6)
            stop.set()
            report = await load
            peaks = sampler.stop()
        print(f"{report.requests} requests, {peaks.samples} samples, peaks {peaks.by_name}")
        print(report.slowest)
        workers = process_tree(server.process.pid) - {server.process.pid}
        log = server.log_text()
    assert not report.problems, report.problems[:10]
    assert report.statuses[("create", 201)] >= 10, report.statuses
    assert peaks.samples > 20
    assert len(workers) == 2
    # Every connection to the database belongs to a worker, pooled or listening.
    owners = {name: owner_pid(name) for name in peaks.by_name}
    assert all(pid in workers for pid in owners.values()), peaks.by_name
    for pid in workers:
        assert peaks.pooled(pid) <= 2, peaks.by_name
        assert peaks.listening(pid) == 1, peaks.by_name
    # The load did need the whole pool at some point, or this test would prove nothing.
    assert max(peaks.pooled(pid) for pid in workers) == 2, peaks.by_name
    assert peaks.total <= 2 * (2 + 1)
    assert "Traceback" not in log


FLEET = 24
REVOCATION_BOUND = 1.0  # seconds; docs/scaling.md states it
TRIALS = 3


@pytest.mark.slow
@pytest.mark.postgres_only
@pytest.mark.skipif(pgcluster.available() is not None, reason=str(pgcluster.available()))
async def test_24_processes_on_max_connections_100(tmp_path: Path, backend: str) -> None:
    """24 processes (each as if on a host of its own: its own change counter) on a cluster
    with max_connections = 100, under verifications and management writes: no connection
    error, at most 24 x (2 + 1) connections, and every process refuses a switched-off key
    within REVOCATION_BOUND of the change's answer."""
    with PgCluster(max_connections=100) as cluster:
        settings = Settings(  # type: ignore[call-arg]
            database_url=cluster.url,
            secret_key=TEST_SECRET,
            github_scanning_keys_url=LOCAL_NOWHERE,
            _env_file=None,
        )
        migrated = akener_cli(akener_env(cluster.url, TEST_SECRET), tmp_path, "db", "upgrade")
        assert migrated.returncode == 0, migrated.stderr
        direct = await Runtime.start(settings)
        try:
            _, admin = await make_key(direct, "admin")
            keys = [(await make_key(direct, f"k{i}", scopes=[]))[1] for i in range(16)]
        finally:
            await direct.close()
        started = time.perf_counter()
        env = akener_env(cluster.url, TEST_SECRET, AKENER_LOG_LEVEL="info")
        with ForkedFleet(env, tmp_path / "fleet", FLEET) as fleet:
            await fleet.wait_ready(within=120)
            ready = time.perf_counter() - started
            urls = fleet.urls
            with ConnectionSampler(asyncpg_dsn(cluster.url), "postgres") as sampler:
                stop = asyncio.Event()
                load = asyncio.create_task(
                    mixed_load(urls, admin, keys, stop, verifiers=6, writers=4)
                )
                refusals = []
                async with httpx.AsyncClient(timeout=30) as client:
                    for trial in range(TRIALS):
                        await asyncio.sleep(0.5)
                        made = await client.post(
                            random.choice(urls) + "/api/v1/keys",
                            headers=bearer(admin),
                            json={"name": f"victim{trial}"},
                        )
                        assert made.status_code == 201, made.text
                        refusals.append(
                            await revoke_across(
                                random.choice(urls),
                                admin,
                                urls,
                                made.json()["id"],
                                made.json()["key"],
                            )
                        )
                stop.set()
                report = await load
                peaks = sampler.stop()
            pids = fleet.pids()
            assert fleet.all_alive(), "a process died"
        logs = fleet.log_text()
    # A request sent later than the bound after the answer must be refused by every process;
    # when each first refused is limited by how often this crowded client gets to probe.
    worst = [max(r.first_refusal.values(), default=float("inf")) for r in refusals]
    print(
        f"\n{FLEET} processes ready in {ready:.1f} s; {report.requests} load requests;"
        f" peak connections {peaks.total} (of max_connections 100);"
        f" slowest refusal per trial (s): {[round(w, 3) for w in worst]};"
        f" last acceptance after the answer (s): {[round(r.bound, 3) for r in refusals]};"
        f" probe requests retried after a transport error: {sum(len(r.retried) for r in refusals)}"
    )
    assert not report.problems, report.problems[:10]
    assert report.statuses[("create", 201)] >= 8, report.statuses
    for refusal in refusals:
        assert not refusal.problems, (refusal.problems[:8], logs[-3000:])
    assert max(r.bound for r in refusals) < REVOCATION_BOUND, [r.late for r in refusals]
    owners = {owner_pid(name) for name in peaks.by_name}
    assert owners <= pids, peaks.by_name
    assert all(peaks.pooled(pid) <= 2 and peaks.listening(pid) <= 1 for pid in pids)
    assert peaks.total <= FLEET * (2 + 1)
    for bad in ("too many clients", "Traceback", "cannot be reached", "did not answer in time"):
        assert bad not in logs, bad
