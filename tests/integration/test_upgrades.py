"""Rolling upgrades: an older akener beside a newer one, on a newer schema and its notifications."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import httpx
import pytest

from akener.verify.listener import asyncpg_dsn
from tests.factories import bearer
from tests.servers import AkenerServer, akener_cli, akener_env

SECRET = "upgrade-secret-" + "u" * 40


def test_an_older_akener_starts_on_a_newer_schema_with_a_warning(tmp_path: Path) -> None:
    env = akener_env(f"sqlite:///{tmp_path}/k.db", SECRET)
    assert akener_cli(env, tmp_path, "db", "upgrade").returncode == 0
    key = akener_cli(env, tmp_path, "keys", "create", "--name", "k").stdout.strip()
    with sqlite3.connect(tmp_path / "k.db") as db:  # as if a newer akener had migrated it
        db.execute("UPDATE alembic_version SET version_num = '0999_from_the_future'")
    with AkenerServer(env, tmp_path, server="uvicorn") as server:
        assert httpx.get(server.url + "/api/v1/whoami", headers=bearer(key)).status_code == 200
        assert "newer than this akener knows" in server.log_text()


async def _notify(database_url: str, payload: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("SELECT pg_notify('akener_key_changes', $1)", payload)
    finally:
        await conn.close()


async def _switch_off_silently(database_url: str, key_id: str) -> None:
    """Change a key without the notification this version sends, to see what a payload does."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("UPDATE api_keys SET status = 'INACTIVE' WHERE id = $1", key_id)
    finally:
        await conn.close()


@pytest.mark.postgres_only
def test_notifications_from_another_version_are_read_or_ignored_never_fatal(
    database_url: str, tmp_path: Path
) -> None:
    env = akener_env(database_url, SECRET)
    made = akener_cli(env, tmp_path, "keys", "create", "--name", "k", "--json")
    key, key_id = (
        made.stdout.split('"key":"')[1].split('"')[0],
        made.stdout.split('"id":"')[1].split('"')[0],
    )
    with AkenerServer(env, tmp_path) as server:
        whoami = server.url + "/api/v1/whoami"
        assert httpx.get(whoami, headers=bearer(key)).status_code == 200  # now cached
        for junk in ("not json {", '{"kind": "webhook.delivered", "id": 1}', "[1]"):
            asyncio.run(_notify(database_url, junk))
        assert httpx.get(whoami, headers=bearer(key)).status_code == 200  # still serving
        asyncio.run(_switch_off_silently(database_url, key_id))
        assert httpx.get(whoami, headers=bearer(key)).status_code == 200  # the cache has not heard
        future = '{"key_id": "%s", "kind": "key.status_changed", "version": 2, "by": "x"}'
        asyncio.run(_notify(database_url, future % key_id))
        status = 200
        for _ in range(50):
            status = httpx.get(whoami, headers=bearer(key)).status_code
            if status == 401:
                break
            asyncio.run(asyncio.sleep(0.02))
        assert status == 401
        assert "Traceback" not in server.log_text()
