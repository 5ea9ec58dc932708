"""Invalidation across processes and failing closed (a second Runtime is "the other process")."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from akener.accounts.permissions import CLI_PRINCIPAL
from akener.app import AkenerApp
from akener.authz.handler import ForwardAuth
from akener.keys import service
from akener.keys.models import KeyStatus
from akener.runtime import Runtime
from akener.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import bearer, make_key
from tests.helpers import TcpProxy, eventually


@pytest.fixture
async def other(settings: Settings, app: AkenerApp) -> AsyncIterator[Runtime]:
    """A second runtime on the same database, like the CLI or another akener process."""
    runtime = await Runtime.start(settings)
    try:
        yield runtime
    finally:
        await runtime.close()


async def test_a_change_made_elsewhere_is_refused_at_once(
    client: httpx.AsyncClient, runtime: Runtime, other: Runtime, backend: str
) -> None:
    row, key = await make_key(runtime, "shared", scopes=[])
    assert (await client.get("/authz", headers=bearer(key))).status_code == 200
    async with other.sessionmaker() as session:
        await service.set_key_status(session, CLI_PRINCIPAL, row.id, KeyStatus.INACTIVE)
        await session.commit()

    async def refused() -> bool:
        return (await client.get("/authz", headers=bearer(key))).status_code == 401

    if backend == "sqlite":
        assert await refused()  # the very next request: it reads the change counter first
    else:
        # Refused once NOTIFY (or the host's change counter) arrives; how fast is measured
        # side by side in bench/revocation_race.py, not by a timed test on a shared machine.
        await eventually(refused, within=5.0, every=0.002)
    assert await refused()


async def test_unreachable_sqlite_answers_503_then_recovers(
    sqlite_template: Path, tmp_path: Path
) -> None:
    real = tmp_path / "akener.db"
    shutil.copy(sqlite_template, real)
    settings = Settings(  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{real}", secret_key=TEST_SECRET, _env_file=None
    )
    started = await Runtime.start(settings)
    _, key = await make_key(started, "survivor", scopes=[])
    await started.close()
    moved = tmp_path / "not-yet" / "akener.db"
    lost = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{moved}"})
    runtime = await Runtime.start(lost, check_schema=False)
    try:
        transport = httpx.ASGITransport(app=ForwardAuth(runtime.verifier))
        async with httpx.AsyncClient(transport=transport, base_url="http://a.test") as client:
            for _ in range(3):
                answer = await client.get("/authz", headers=bearer(key))
                assert answer.status_code == 503
                assert answer.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
            moved.parent.mkdir()
            shutil.copy(real, moved)
            assert (await client.get("/authz", headers=bearer(key))).status_code == 200
    finally:
        await runtime.close()


@pytest.mark.postgres_only
async def test_postgres_going_away_fails_closed_and_recovers(
    settings: Settings, backend: str
) -> None:
    url = make_url(settings.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = AkenerApp(settings.model_copy(update={"database_url": via_proxy}))
    direct = await Runtime.start(settings)
    try:
        async with app.running() as runtime:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://a.test") as client:
                row, key = await make_key(runtime, "steady", scopes=[])

                async def status() -> int:
                    return (await client.get("/authz", headers=bearer(key))).status_code

                assert await status() == 200
                assert await status() == 200  # now from the cache
                await proxy.stop()

                async def unavailable() -> bool:
                    return await status() == 503

                await eventually(unavailable, within=2.0)
                # Meanwhile the key is switched off by someone this process cannot hear.
                async with direct.sessionmaker() as session:
                    await service.set_key_status(session, CLI_PRINCIPAL, row.id, KeyStatus.INACTIVE)
                    await session.commit()
                for _ in range(5):
                    assert await status() == 503
                await proxy.start()

                async def decided() -> bool:
                    code = await status()
                    assert code != 200, "a key switched off while unreachable was accepted"
                    return code == 401

                await eventually(decided, within=10.0, every=0.02)
                async with direct.sessionmaker() as session:
                    await service.set_key_status(session, CLI_PRINCIPAL, row.id, KeyStatus.ACTIVE)
                    await session.commit()

                async def back() -> bool:
                    return await status() == 200

                await eventually(back, within=2.0)
    finally:
        await direct.close()
        await proxy.stop()
