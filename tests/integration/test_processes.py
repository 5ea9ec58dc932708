"""Real ``akener serve`` processes: revocation across processes, workers, a killed listener."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from akener.keys.models import ApiKey
from akener.runtime import Runtime
from akener.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import bearer, make_key
from tests.servers import AkenerServer, akener_cli, akener_env, process_tree


async def _refused_within(client: httpx.AsyncClient, url: str, key: str, bound: float) -> float:
    """Seconds until ``url`` refuses ``key``; fails past ``bound``."""
    started = time.perf_counter()
    while True:
        answer = await client.get(url + "/authz", headers=bearer(key))
        if answer.status_code == 401:
            return time.perf_counter() - started
        assert answer.status_code == 200
        assert time.perf_counter() - started < bound, f"still accepted after {bound} s"
        await asyncio.sleep(0.002)


async def _listener_pids(direct: Runtime, server: AkenerServer) -> list[int]:
    """Backend pids of the listener connections of ``server``'s processes (its workers)."""
    assert server.process is not None
    names = [f"akener-listener:{pid}" for pid in process_tree(server.process.pid)]
    async with direct.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = ANY(:names)"
            ),
            {"names": names},
        )
        return [row[0] for row in rows]


@pytest.mark.postgres_only
async def test_two_processes_revoke_within_100ms_and_survive_a_killed_listener(
    settings: Settings, tmp_path: Path, backend: str
) -> None:
    env = akener_env(settings.database_url, TEST_SECRET)
    direct = await Runtime.start(settings)
    try:
        _, admin = await make_key(direct, "admin")
        keys = [await make_key(direct, f"k{i}", scopes=[]) for i in range(4)]
        with (
            AkenerServer(env, tmp_path / "a") as a,
            AkenerServer(env, tmp_path / "b") as b,
        ):
            async with httpx.AsyncClient(timeout=5) as client:
                for _row, key in keys:
                    for server in (a, b):
                        answer = await client.get(server.url + "/authz", headers=bearer(key))
                        assert answer.status_code == 200  # and now cached in both

                async def change(method: str, key_id: str, **kw: object) -> None:
                    answer = await client.request(
                        method, f"{a.url}/api/v1/keys/{key_id}", headers=bearer(admin), **kw
                    )
                    assert answer.is_success, answer.text

                # Deactivate through A: A refuses on its very next request, B within 100 ms.
                row, key = keys[0]
                await change("PATCH", row.id, json={"status": "INACTIVE"})
                assert (await client.get(a.url + "/authz", headers=bearer(key))).status_code == 401
                assert await _refused_within(client, b.url, key, 1.0) < 0.1

                # Delete likewise.
                row, key = keys[1]
                await change("DELETE", row.id)
                assert (await client.get(a.url + "/authz", headers=bearer(key))).status_code == 401
                assert await _refused_within(client, b.url, key, 1.0) < 0.1

                # Kill B's listener from PostgreSQL's side, then switch a key off at once.
                (old_pid,) = await _listener_pids(direct, b)
                row, key = keys[2]
                async with direct.engine.connect() as conn:
                    await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": old_pid})
                await change("PATCH", row.id, json={"status": "INACTIVE"})
                deadline = time.perf_counter() + 10
                while True:  # B never accepts it: not before, not after it listens again
                    answer = await client.get(b.url + "/authz", headers=bearer(key))
                    assert answer.status_code == 401, "B accepted a key switched off meanwhile"
                    pids = await _listener_pids(direct, b)
                    if pids and pids != [old_pid]:
                        break
                    assert time.perf_counter() < deadline, "B's listener did not come back"
                    await asyncio.sleep(0.01)
                assert (await client.get(b.url + "/authz", headers=bearer(key))).status_code == 401

                # The new listener works: the next change reaches B within 100 ms again.
                row, key = keys[3]
                assert (await client.get(b.url + "/authz", headers=bearer(key))).status_code == 200
                await change("PATCH", row.id, json={"status": "INACTIVE"})
                assert await _refused_within(client, b.url, key, 1.0) < 0.1
    finally:
        await direct.close()


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        return sock.recv(65536)


async def test_workers_refuse_a_key_the_cli_switched_off(
    settings: Settings, tmp_path: Path, backend: str
) -> None:
    # Usage is only written at shutdown here: the count below proves the shutdown flush.
    env = akener_env(settings.database_url, TEST_SECRET, AKENER_USAGE_FLUSH_SECONDS="3600")
    direct = await Runtime.start(settings)
    try:
        row, key = await make_key(direct, "worker key", scopes=[])
    finally:
        await direct.close()
    with AkenerServer(env, tmp_path / "w", workers=2) as server:
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(20):  # fresh connections, spread over both workers
                answer = await client.get(
                    server.url + "/authz", headers=bearer(key) | {"Connection": "close"}
                )
                assert answer.status_code == 200
            done = akener_cli(env, tmp_path, "keys", "deactivate", row.id)
            assert done.returncode == 0, done.stderr
            # Refused at once by both workers, on either database: the CLI bumps the change
            # counter of this host (SQLite's row, or PostgreSQL's shared-memory file) before it
            # exits, and every worker checks it before a cached answer.
            for _ in range(40):
                answer = await client.get(
                    server.url + "/authz", headers=bearer(key) | {"Connection": "close"}
                )
                assert answer.status_code == 401
        # Requests the HTTP parser cannot read are 400; odd bytes in a header are a plain 401.
        assert _raw(server.port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
        odd = b"GET /authz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n"
        assert _raw(server.port, odd).startswith(b"HTTP/1.1 401")
    direct = await Runtime.start(settings)
    try:
        async with direct.sessionmaker() as session:
            stored = await session.get(ApiKey, row.id)
            assert stored is not None
            assert stored.request_count == 20  # every accepted request, from both workers
            assert stored.last_used_at is not None
    finally:
        await direct.close()


async def test_uvicorn_remains_available(sqlite_template: Path, tmp_path: Path) -> None:
    database = tmp_path / "akener.db"
    shutil.copy(sqlite_template, database)
    env = akener_env(f"sqlite+aiosqlite:///{database}", TEST_SECRET)
    refused = akener_cli(env, tmp_path, "serve", "--server", "nope")
    assert refused.returncode == 1
    assert "unknown server 'nope'" in refused.stderr
    created = akener_cli(env, tmp_path, "keys", "create", "--name", "u")
    key = created.stdout.strip()
    with AkenerServer(env, tmp_path / "u", server="uvicorn") as server:
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(server.url + "/authz", headers=bearer(key))).status_code == 200
            assert (await client.get(server.url + "/authz")).status_code == 401
