"""Shared fixtures: one suite, two databases.

Every test that takes ``database_url`` (directly or through ``app``/``client``) runs on SQLite,
and also on PostgreSQL when AKENER_TEST_DATABASE_URL is set (CI sets it). The schema comes from
the real migrations; each test starts from empty tables.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from akener.app import AkenerApp
from akener.db.engine import make_engine
from akener.db.migrate import upgrade
from akener.db.models import metadata
from akener.runtime import Runtime
from akener.settings import Settings
from akener.verify.hostcounter import PREFIX, default_dir

TEST_SECRET = "test-secret-" + "s" * 40
LOCAL_NOWHERE = "http://127.0.0.1:9/nothing-listens-here"
PG_URL = os.environ.get("AKENER_TEST_DATABASE_URL", "")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``backend`` with every database this run can reach."""
    if "backend" in metafunc.fixturenames:
        backends = ["sqlite"] + (["postgresql"] if PG_URL else [])
        if metafunc.definition.get_closest_marker("postgres_only"):
            backends = ["postgresql"] if PG_URL else []
        metafunc.parametrize("backend", backends, scope="session")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "akener.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this run, dropped at the end."""
    base = make_url(Settings(database_url=PG_URL, _env_file=None).database_url)  # type: ignore[call-arg]
    name = f"akener_test_{os.getpid()}"
    admin = base.set(database="postgres").render_as_string(hide_password=False)
    url = base.set(database=name).render_as_string(hide_password=False)
    asyncio.run(
        _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    )
    asyncio.run(_migrate(url))
    yield url
    asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", autouse=True)
def _remove_change_counters() -> Iterator[None]:
    """Remove the per-host change counter files of this run's PostgreSQL databases (they are
    named after the database, which carries this process's id: akener_test_<pid>, …)."""
    yield
    for counter in default_dir().glob(f"{PREFIX}*_{os.getpid()}-*"):
        counter.unlink(missing_ok=True)


async def _admin(url: str, *statements: str) -> None:
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.exec_driver_sql(statement)
    finally:
        await engine.dispose()


async def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


# Rows the migrations seed (built-in roles) survive between tests; everything else goes.
SEEDED = {"roles": "DELETE FROM roles WHERE NOT builtin"}


async def _truncate(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables if t.name not in SEEDED)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
            for statement in SEEDED.values():
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database for one test."""
    if backend == "sqlite":
        path = tmp_path / "akener.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url: str = request.getfixturevalue("pg_database")
    asyncio.run(_truncate(url))
    yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings for a test: its own database, a fixed secret, nothing read from .env."""
    return Settings(  # type: ignore[call-arg]
        database_url=database_url,
        secret_key=TEST_SECRET,
        _env_file=None,
        # Never GitHub's real key list: tests reach nothing off this machine.
        github_scanning_keys_url=LOCAL_NOWHERE,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[AkenerApp]:
    """A started application (its lifespan runs around the test)."""
    application = AkenerApp(settings)
    async with application.running():
        yield application


@pytest.fixture
def runtime(app: AkenerApp) -> Runtime:
    """The started application's runtime."""
    return app.runtime


@pytest.fixture
async def client(app: AkenerApp) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as c:
        yield c
