"""AKENER_CREDITS_ON_STORE_ERROR: what a key with credits gets when the database cannot spend
them. A real lock held by another connection makes the spend wait past the query timeout (the
"frozen" database a fleet meets when a row stays locked), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import text

from akener.app import AkenerApp
from akener.db.engine import make_engine
from akener.settings import Settings
from tests.factories import bearer, make_key


@asynccontextmanager
async def key_row_locked(settings: Settings, key_id: str) -> AsyncIterator[None]:
    """Another connection holds the key's row (PostgreSQL) or the write lock (SQLite)."""
    if settings.is_sqlite:
        path = settings.database_url.split(":///", 1)[1]
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        return
    engine = make_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(
                text("SELECT id FROM api_keys WHERE id = :id FOR UPDATE"), {"id": key_id}
            )
            yield
            await conn.rollback()
    finally:
        await engine.dispose()


async def _run(
    settings: Settings, choice: str, caplog: pytest.LogCaptureFixture
) -> tuple[list[httpx.Response], httpx.Response]:
    quick = settings.model_copy(
        update={"db_query_timeout_seconds": 0.5, "credits_on_store_error": choice}
    )
    app = AkenerApp(quick)
    async with app.running():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as web:
            _, admin = await make_key(app.runtime, "admin")
            made = await web.post(
                "/api/v1/keys",
                json={"name": "metered", "scopes": [], "credits": {"remaining": 5}},
                headers=bearer(admin),
            )
            key_id, key = made.json()["id"], made.json()["key"]
            assert (await web.get("/authz", headers=bearer(key))).status_code == 200
            with caplog.at_level(logging.WARNING, logger="akener.verify"):
                async with key_row_locked(quick, key_id):
                    during = [await web.get("/authz", headers=bearer(key)) for _ in range(3)]
            after = await web.get("/authz", headers=bearer(key))
    return during, after


async def test_deny_answers_503_and_spends_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    during, after = await _run(settings, "deny", caplog)
    assert [r.status_code for r in during] == [503, 503, 503]
    assert after.status_code == 200 and after.headers["x-akener-credits-remaining"] == "3"
    lines = [r for r in caplog.records if "cannot spend credits" in r.getMessage()]
    assert len(lines) == 1 and "refused with 503" in lines[0].getMessage()


async def test_allow_admits_without_spending_and_recovers_by_itself(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    during, after = await _run(settings, "allow", caplog)
    assert [r.status_code for r in during] == [200, 200, 200]
    assert all(r.headers["x-akener-credits-remaining"] == "" for r in during)
    # Nothing was spent while the row was locked: 5 - 1 before - 1 now.
    assert after.status_code == 200 and after.headers["x-akener-credits-remaining"] == "3"
    lines = [r for r in caplog.records if "cannot spend credits" in r.getMessage()]
    assert len(lines) == 1 and "admitted without spending" in lines[0].getMessage()
