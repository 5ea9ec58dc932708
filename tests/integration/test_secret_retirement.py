"""Old secret versions retire themselves: a key found through an old pepper is re-digested."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from akener.accounts.permissions import CLI_PRINCIPAL
from akener.app import AkenerApp
from akener.cli import app as cli
from akener.keys import service, tokens
from akener.keys.models import ApiKey
from akener.runtime import Runtime
from akener.settings import Settings
from tests.factories import bearer, make_key
from tests.helpers import count_statements

OLD = "old-secret-" + "o" * 40
NEW = "new-secret-" + "n" * 40


def _versioned(settings: Settings, *, current: int, old: bool) -> Settings:
    update: dict[str, object] = {"secret_key_version": current}
    if current == 1:
        update["secret_key"] = SecretStr(OLD)
    else:
        update |= {"secret_key": SecretStr(NEW), "old_secret_keys": f"1:{OLD}" if old else ""}
    return settings.model_copy(update=update)


@pytest.fixture
async def rotated(
    settings: Settings,
) -> AsyncIterator[tuple[AkenerApp, ApiKey, str, ApiKey, str, str]]:
    """Two keys made under secret version 1 (one since rotated with a grace period), then an
    app running on version 2 with version 1 kept as an old secret."""
    before = await Runtime.start(_versioned(settings, current=1, old=False))
    try:
        row, key = await make_key(before, "made under v1", scopes=[])
        other, old_secret = await make_key(before, "rotated under v1", scopes=[])
        async with before.sessionmaker() as session:
            other, new_secret = await service.rotate_key(
                session,
                CLI_PRINCIPAL,
                other.id,
                grace_period_seconds=3600,
                peppers=before.peppers,
            )
            await session.commit()
    finally:
        await before.close()
    application = AkenerApp(_versioned(settings, current=2, old=True))
    async with application.running():
        yield application, row, key, other, old_secret, new_secret


async def _stored(runtime: Runtime, key_id: str) -> ApiKey:
    async with runtime.sessionmaker() as session:
        found = await session.get(ApiKey, key_id)
        assert found is not None
        return found


async def test_a_key_seen_through_an_old_secret_moves_to_the_current_one(
    rotated: tuple[AkenerApp, ApiKey, str, ApiKey, str, str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, row, key, other, old_secret, new_secret = rotated
    runtime = app.runtime
    assert row.pepper_version == 1 and other.previous_pepper_version == 1
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as client:
        for credential in (key, old_secret, new_secret):
            assert (await client.get("/authz", headers=bearer(credential))).status_code == 200
        assert runtime.verifier.retirer is not None
        await runtime.verifier.retirer.wait()
        moved = await _stored(runtime, row.id)
        assert moved.pepper_version == 2
        assert moved.digest == tokens.digest(key, runtime.peppers.by_version[2])
        moved_other = await _stored(runtime, other.id)
        assert moved_other.pepper_version == 2 and moved_other.previous_pepper_version == 2
        assert moved_other.previous_digest == tokens.digest(
            old_secret, runtime.peppers.by_version[2]
        )
        # Once: a cold cache reads the key again, and writes nothing.
        runtime.verifier.cache.clear()
        with count_statements(runtime.engine) as statements:
            assert (await client.get("/authz", headers=bearer(key))).status_code == 200
            await runtime.verifier.retirer.wait()
        assert not [s for s in statements.statements if s.lstrip().upper().startswith("UPDATE")]

    # keys list shows no key left on version 1 ...
    monkeypatch.setenv("AKENER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AKENER_SECRET_KEY", NEW)
    monkeypatch.setenv("AKENER_SECRET_KEY_VERSION", "2")
    monkeypatch.setenv("AKENER_OLD_SECRET_KEYS", f"1:{OLD}")
    listed = await asyncio.to_thread(CliRunner().invoke, cli, ["keys", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    versions = {
        json.loads(line)["name"]: json.loads(line)["secret_versions"]
        for line in listed.stdout.splitlines()
    }
    assert versions == {"made under v1": [2], "rotated under v1": [2]}
    table = await asyncio.to_thread(CliRunner().invoke, cli, ["keys", "list"])
    assert "SECRET" in table.stdout.splitlines()[0]
    assert " v1 " not in table.stdout and "+v1" not in table.stdout

    # ... so the old secret can go: both secrets still verify without it.
    without_old = AkenerApp(_versioned(settings, current=2, old=False))
    async with without_old.running():
        transport = httpx.ASGITransport(app=without_old)
        async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as c:
            for credential in (key, old_secret, new_secret):
                assert (await c.get("/authz", headers=bearer(credential))).status_code == 200


def test_keys_list_shows_an_old_secret_version(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def prepare() -> None:
        runtime = await Runtime.start(_versioned(settings, current=1, old=False))
        try:
            await make_key(runtime, "still on v1", scopes=[])
        finally:
            await runtime.close()

    asyncio.run(prepare())
    monkeypatch.setenv("AKENER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AKENER_SECRET_KEY", NEW)
    monkeypatch.setenv("AKENER_SECRET_KEY_VERSION", "2")
    monkeypatch.setenv("AKENER_OLD_SECRET_KEYS", f"1:{OLD}")
    table = CliRunner().invoke(cli, ["keys", "list"])
    assert table.exit_code == 0, table.output
    assert "  v1  " in table.stdout.splitlines()[1]
