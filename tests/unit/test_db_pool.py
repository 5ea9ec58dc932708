"""The connection budget's settings: pool size without overflow, statement cache, listener URL."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from akener.db.engine import engine_for
from akener.db.errors import PREPARED_STATEMENTS, describe
from akener.settings import Settings

PG = "postgresql://u@db.internal:5432/akener"


def _settings(**values: object) -> Settings:
    return Settings(database_url=PG, _env_file=None, **values)  # type: ignore[arg-type]


async def test_the_pool_holds_the_configured_size_and_never_overflows() -> None:
    engine = engine_for(_settings())
    try:
        assert engine.pool.size() == 2  # type: ignore[attr-defined]
        assert engine.pool._max_overflow == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
    engine = engine_for(_settings(db_pool_size=5))
    try:
        assert engine.pool.size() == 5  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


class _Captured(Exception):
    """Raised instead of connecting, carrying what asyncpg.connect would have received."""


async def _connect_args(engine: AsyncEngine) -> dict[str, Any]:
    """The keyword arguments the engine passes to asyncpg.connect (no connection is made)."""

    def capture(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        raise _Captured(cparams)

    event.listen(engine.sync_engine, "do_connect", capture)
    with pytest.raises(_Captured) as caught:
        async with engine.connect():
            pass
    found: dict[str, Any] = caught.value.args[0]
    return found


async def test_connections_are_named_after_the_process_and_the_cache_can_be_turned_off() -> None:
    engine = engine_for(_settings(db_statement_cache=False))
    try:
        args = await _connect_args(engine)
        assert args["server_settings"] == {"application_name": f"akener:{os.getpid()}"}
        assert args["statement_cache_size"] == 0
        assert args["prepared_statement_cache_size"] == 0
        names = {args["prepared_statement_name_func"]() for _ in range(100)}
        assert len(names) == 100  # unique: two clients of one server connection never clash
    finally:
        await engine.dispose()
    engine = engine_for(_settings())
    try:
        args = await _connect_args(engine)
        assert "statement_cache_size" not in args
        assert "prepared_statement_name_func" not in args
    finally:
        await engine.dispose()


def test_the_listener_url_defaults_to_the_database_and_must_be_postgresql() -> None:
    assert _settings().listen_url == "postgresql+asyncpg://u@db.internal:5432/akener"
    direct = "postgresql://u@db-primary:5432/akener"
    assert _settings(listen_database_url=direct).listen_url == (
        "postgresql+asyncpg://u@db-primary:5432/akener"
    )
    assert _settings(listen_database_url="").listen_url == _settings().listen_url
    with pytest.raises(ValidationError, match="AKENER_LISTEN_DATABASE_URL"):
        _settings(listen_database_url="sqlite:///x.db")
    with pytest.raises(ValidationError):
        _settings(db_pool_size=0)


def test_a_refused_prepared_statement_says_what_to_set() -> None:
    error = Exception('prepared statement "__asyncpg_stmt_1__" already exists')
    assert describe(error) == PREPARED_STATEMENTS
    assert "AKENER_DB_STATEMENT_CACHE=false" in PREPARED_STATEMENTS
