"""Usage counting: batched, visible in the API and the CLI, silent to the cache, safe on delete."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from akener.accounts.permissions import CLI_PRINCIPAL
from akener.cli import app as cli
from akener.db.engine import make_engine, make_sessionmaker
from akener.keys import service
from akener.keys.models import ApiKey
from akener.runtime import Runtime
from akener.settings import Settings
from akener.verify.models import KeyUsage
from tests.conftest import TEST_SECRET
from tests.factories import bearer, make_key
from tests.helpers import count_statements
from tests.servers import free_port


async def test_requests_are_counted_in_batches(client: httpx.AsyncClient, runtime: Runtime) -> None:
    row, key = await make_key(runtime, "counted", scopes=[])
    with count_statements(runtime.engine) as statements:
        for _ in range(20):
            assert (await client.get("/authz", headers=bearer(key))).status_code == 200
    assert not [s for s in statements.statements if "UPDATE" in s or "INSERT" in s]
    before = datetime.now(UTC) - timedelta(seconds=1)
    await runtime.usage.flush()
    me = (await client.get("/api/v1/whoami", headers=bearer(key))).json()
    assert me["request_count"] == 20  # whoami itself is counted in the next batch
    assert datetime.fromisoformat(me["last_used_at"]) >= before
    async with runtime.sessionmaker() as session:
        rows = (await session.execute(select(KeyUsage))).scalars().all()
    assert [(r.key_id, r.day, r.count) for r in rows] == [(row.id, datetime.now(UTC).date(), 20)]
    await runtime.usage.flush()
    listed = await client.get("/api/v1/keys", headers=bearer(key))
    assert listed.status_code == 403  # the key has no api_keys.read; whoami shows its own
    me = (await client.get("/api/v1/whoami", headers=bearer(key))).json()
    assert me["request_count"] == 21
    async with runtime.sessionmaker() as session:
        rows = (await session.execute(select(KeyUsage))).scalars().all()
    assert [r.count for r in rows] == [21]


async def test_flush_keeps_the_cache_and_skips_deleted_keys(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    kept, key = await make_key(runtime, "kept", scopes=[])
    gone, other = await make_key(runtime, "gone", scopes=[])
    for credential in (key, other):
        assert (await client.get("/authz", headers=bearer(credential))).status_code == 200
    async with runtime.sessionmaker() as session:
        await service.delete_key(session, CLI_PRINCIPAL, gone.id)
        await session.commit()
    # The delete is a key change: the cache takes it in on the next request (SQLite: wholesale).
    assert (await client.get("/authz", headers=bearer(key))).status_code == 200
    with count_statements(runtime.engine) as flushed:
        await runtime.usage.flush()
    assert runtime.usage.pending == 0  # written (the deleted key's count dropped, no error)
    # No key change event: neither a NOTIFY nor a bump of SQLite's change counter.
    assert flushed.statements
    assert not [s for s in flushed.statements if "pg_notify" in s or "key_change_seq" in s]
    with count_statements(runtime.engine) as statements:
        assert (await client.get("/authz", headers=bearer(key))).status_code == 200
    assert len(statements) == 0
    async with runtime.sessionmaker() as session:
        rows = (await session.execute(select(KeyUsage))).scalars().all()
    assert [r.key_id for r in rows] == [kept.id]


async def test_last_used_at_is_written_at_most_once_a_minute(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, key = await make_key(runtime, "touched", scopes=[])
    await client.get("/authz", headers=bearer(key))
    await runtime.usage.flush()
    first = (await client.get("/api/v1/whoami", headers=bearer(key))).json()["last_used_at"]
    await client.get("/authz", headers=bearer(key))
    with count_statements(runtime.engine) as statements:
        await runtime.usage.flush()
    assert not [s for s in statements.statements if "last_used_at" in s]
    again = (await client.get("/api/v1/whoami", headers=bearer(key))).json()["last_used_at"]
    assert again == first


def test_keys_list_shows_usage(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    async def prepare() -> str:
        runtime = await Runtime.start(settings)
        try:
            row, _ = await make_key(runtime, "Uptime Robot Webhook", scopes=[])
            for _ in range(3):
                runtime.usage.record(row.id)
            await runtime.usage.flush()
            return row.id
        finally:
            await runtime.close()

    key_id = asyncio.run(prepare())
    monkeypatch.setenv("AKENER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AKENER_SECRET_KEY", TEST_SECRET)
    result = CliRunner().invoke(cli, ["keys", "list"])
    assert result.exit_code == 0, result.output
    header, line = result.stdout.splitlines()
    assert "LAST USED (UTC)" in header and "REQUESTS" in header
    assert line.startswith(key_id)
    assert " 3  Uptime Robot Webhook" in line
    assert "never" not in line
    as_json = CliRunner().invoke(cli, ["keys", "list", "--json"])
    assert json.loads(as_json.stdout)["request_count"] == 3


async def test_counts_survive_failed_flushes_and_are_written_when_the_database_is_back(
    runtime: Runtime,
) -> None:
    row, _ = await make_key(runtime, "patient", scopes=[])
    usage = runtime.usage
    working = usage._sessionmaker
    # A database nobody answers for: every flush fails with a real connection error.
    gone = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    usage._sessionmaker = make_sessionmaker(gone)
    try:
        for round_ in range(3):
            for _ in range(4):
                usage.record(row.id)
            assert await usage.flush() is False
            assert usage.pending == 4 * (round_ + 1)  # kept and merged, nothing lost
    finally:
        usage._sessionmaker = working
        await gone.dispose()
    usage.record(row.id)
    assert await usage.flush() is True
    assert usage.pending == 0
    async with runtime.sessionmaker() as session:
        stored = await session.get(ApiKey, row.id)
        assert stored is not None and stored.request_count == 13


@pytest.mark.postgres_only
async def test_a_flush_that_loses_a_deadlock_tries_again(
    runtime: Runtime, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    made = sorted(
        [(await make_key(runtime, f"d{i}", scopes=[]))[0] for i in range(2)], key=lambda r: r.id
    )
    first, second = (row.id for row in made)
    for key_id in (first, second):
        runtime.usage.record(key_id)
    lock = "SELECT id FROM api_keys WHERE id = :id FOR UPDATE"
    caplog.set_level(logging.INFO, logger="akener.verify")
    async with runtime.engine.connect() as other:
        await other.begin()
        await other.execute(text(lock), {"id": second})  # another transaction holds the second row
        flush = asyncio.create_task(runtime.usage.flush())
        await asyncio.sleep(0.3)  # the flush holds the first row and waits for the second
        # Now the other transaction wants the first row: a deadlock, which PostgreSQL breaks by
        # aborting the transaction that waited longest, the flush's.
        await other.execute(text(lock), {"id": first})
        await other.commit()
    assert await flush is True
    assert "retrying after" in caplog.text and "40P01" in caplog.text
    async with runtime.sessionmaker() as session:
        counts = [(await session.get(ApiKey, key_id)).request_count for key_id in (first, second)]  # type: ignore[union-attr]
    assert counts == [1, 1]
