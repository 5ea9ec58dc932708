"""SQLite: a writer that holds the lock longer than AKENER_DB_QUERY_TIMEOUT_SECONDS makes a
change wait that long at most, then answer 503; verification is not held up at all."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import httpx

from akener.app import AkenerApp
from akener.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import bearer, make_key


async def test_a_held_write_lock_is_a_503_after_the_query_timeout(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "akener.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(  # type: ignore[call-arg]
        database_url=f"sqlite:///{path}",
        secret_key=TEST_SECRET,
        db_query_timeout_seconds=1,
        _env_file=None,
    )
    app = AkenerApp(settings)
    async with app.running() as runtime:
        _, admin = await make_key(runtime, "admin")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://a.test") as client:
            assert (await client.get("/authz", headers=bearer(admin))).status_code == 200
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # another process writing, and not letting go
            try:
                started = time.monotonic()
                answer = await client.post(
                    "/api/v1/keys", json={"name": "waits"}, headers=bearer(admin)
                )
                took = time.monotonic() - started
                assert (await client.get("/authz", headers=bearer(admin))).status_code == 200
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert answer.status_code == 503
            assert answer.json()["error"]["message"] == (
                "the database is busy with another writer; try again"
            )
            assert 0.9 < took < 5
            again = await client.post("/api/v1/keys", json={"name": "waits"}, headers=bearer(admin))
            assert again.status_code == 201
