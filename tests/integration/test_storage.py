"""What the database holds, how transactions end, and that migrations match the models."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from akener.app import AkenerApp
from akener.db.models import metadata
from akener.keys.models import ApiKey
from akener.runtime import Runtime
from tests.factories import bearer, make_key


async def test_the_database_never_holds_a_plaintext_key(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin")
    created = await client.post("/api/v1/keys", json={"name": "CI"}, headers=bearer(admin))
    plaintexts = [admin, created.json()["key"]]
    dump = []
    async with runtime.engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            dump += [repr(tuple(row)) for row in rows]
    everything = "\n".join(dump)
    assert "CI" in everything  # the dump did read the rows
    for key in plaintexts:
        secret = key.removeprefix("akener_")
        assert secret not in everything
        assert secret[:-4] not in everything


@pytest.fixture
def failing_commit() -> Iterator[None]:
    """Make every ORM commit fail, as a lost database connection at commit time would."""

    def refuse(_session: Session) -> None:
        raise RuntimeError("simulated commit failure")

    event.listen(Session, "before_commit", refuse)
    yield
    event.remove(Session, "before_commit", refuse)


async def test_a_failing_commit_is_a_5xx_and_nothing_is_stored(
    app: AkenerApp, runtime: Runtime, request: pytest.FixtureRequest
) -> None:
    _, admin = await make_key(runtime, "admin")
    request.getfixturevalue("failing_commit")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as client:
        answer = await client.post("/api/v1/keys", json={"name": "lost"}, headers=bearer(admin))
    assert answer.status_code == 500
    assert "akener_" not in answer.text
    async with runtime.sessionmaker() as session:
        names = (await session.execute(select(ApiKey.name))).scalars().all()
    assert names == ["admin"]


async def test_migrations_match_the_models(runtime: Runtime) -> None:
    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"render_as_batch": True})
        return list(compare_metadata(context, metadata))

    async with runtime.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
