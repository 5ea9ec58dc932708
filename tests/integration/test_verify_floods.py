"""Unknown-key floods and cold caches: single-flight reads, failed checks throttled per address."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from akener.app import AkenerApp
from akener.runtime import Runtime
from akener.settings import Settings
from akener.verify.listener import APPLICATION_NAME
from tests.factories import bearer, make_key
from tests.helpers import count_statements, eventually


def _random_key() -> str:
    return "akener_" + secrets.token_hex(32)


async def test_concurrent_misses_for_one_key_share_one_database_read(runtime: Runtime) -> None:
    _, key = await make_key(runtime, "popular", scopes=[])
    verifier = runtime.verifier
    verifier.cache.clear()  # a cold cache, as after a restart or a listener reconnect
    before = verifier.reads
    with count_statements(runtime.engine) as statements:
        entries = await asyncio.gather(*(verifier.lookup(key) for _ in range(50)))
    assert {e.name if e else None for e in entries} == {"popular"}
    assert verifier.reads - before == 1
    assert len([s for s in statements.statements if "FROM api_keys" in s]) == 1
    # A flood of one made-up key likewise costs one read.
    unknown = _random_key()
    assert await asyncio.gather(*(verifier.lookup(unknown) for _ in range(50))) == [None] * 50
    assert verifier.reads - before == 2


async def test_a_read_begun_before_an_invalidation_is_not_shared_after_it(
    runtime: Runtime,
) -> None:
    row, key = await make_key(runtime, "changing", scopes=[])
    verifier = runtime.verifier
    verifier.cache.clear()
    before = verifier.reads
    first = asyncio.create_task(verifier.lookup(key))
    await asyncio.sleep(0)  # the first read is under way
    verifier.forget(frozenset({row.id}))  # a change committed meanwhile
    second = await verifier.lookup(key)
    await first
    assert second is not None
    assert verifier.reads - before == 2  # the second request read again


@pytest.fixture
async def throttled(settings: Settings) -> AsyncIterator[AkenerApp]:
    """An app allowing 5 failed database checks per address per minute; 10.0.0.0/8 and the
    test client's own address are trusted proxies."""
    limited = settings.model_copy(
        update={
            "verify_max_failures": 5,
            "verify_failure_window": 60.0,
            "trusted_proxies": "127.0.0.1, 10.0.0.0/8",
        }
    )
    application = AkenerApp(limited)
    async with application.running():
        yield application


async def test_failed_checks_are_throttled_per_client_address(throttled: AkenerApp) -> None:
    runtime = throttled.runtime
    _, good = await make_key(runtime, "good", scopes=[])
    transport = httpx.ASGITransport(app=throttled, client=("192.0.2.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as client:
        assert (await client.get("/authz", headers=bearer(good))).status_code == 200  # cached
        tried = [_random_key() for _ in range(5)]
        for key in tried:
            assert (await client.get("/authz", headers=bearer(key))).status_code == 401
        with count_statements(runtime.engine) as statements:
            flood = await client.get("/authz", headers=bearer(_random_key()))
            api = await client.get("/api/v1/whoami", headers=bearer(_random_key()))
            assert (await client.get("/authz", headers=bearer(good))).status_code == 200
            assert (await client.get("/authz", headers=bearer(tried[0]))).status_code == 401
        assert flood.status_code == 429 and api.status_code == 429
        assert flood.json()["error"]["code"] == "RATE_LIMITED"
        assert api.json()["error"]["code"] == "RATE_LIMITED"
        assert len(statements) == 0  # nothing of the flood reached the database
        # A forged X-Forwarded-For from an untrusted peer changes nothing.
        forged = {"X-Forwarded-For": "198.51.100.1"}
        answer = await client.get("/authz", headers=bearer(_random_key()) | forged)
        assert answer.status_code == 429
    # Behind a trusted proxy each client is counted on its own.
    transport = httpx.ASGITransport(app=throttled, client=("10.1.2.3", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as proxy:
        behind = {"X-Forwarded-For": "192.0.2.7, 10.9.9.9"}  # the flooder, then another proxy
        answer = await proxy.get("/authz", headers=bearer(_random_key()) | behind)
        assert answer.status_code == 429
        other = {"X-Forwarded-For": "203.0.113.5"}
        answer = await proxy.get("/authz", headers=bearer(_random_key()) | other)
        assert answer.status_code == 401


@pytest.mark.postgres_only
async def test_after_a_listener_reconnect_the_refill_is_one_read_per_key(
    runtime: Runtime, backend: str
) -> None:
    made = [await make_key(runtime, f"refill{i}", scopes=[]) for i in range(3)]
    verifier, listener = runtime.verifier, runtime.listener
    assert listener is not None
    for _, key in made:
        await verifier.lookup(key)
    connects = listener.connects
    async with runtime.engine.connect() as conn:  # drop the listener from the server's side
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name"
            ),
            {"name": f"{APPLICATION_NAME}:{os.getpid()}"},
        )
    await eventually(lambda: _true(listener.connects > connects and verifier.cache.trusted))
    assert len(verifier.cache) == 0  # whatever was missed meanwhile is gone
    before = verifier.reads
    burst = [verifier.lookup(key) for _, key in made for _ in range(40)]
    entries = await asyncio.gather(*burst)
    assert all(entry is not None for entry in entries)
    assert verifier.reads - before == len(made)  # 120 requests, one read per key


async def _true(value: bool) -> bool:
    return value
