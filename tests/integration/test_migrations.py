"""The shipped migrations and the models describe the same schema, on every database."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select
from sqlalchemy.engine import Connection

from akener.accounts.models import Role
from akener.accounts.permissions import BUILTIN_ROLES
from akener.db.engine import make_engine, make_sessionmaker
from akener.db.models import metadata


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_models_match_the_migrations(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_builtin_roles_are_seeded(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            roles = (await session.execute(select(Role))).scalars()
            assert {r.name: r.granted for r in roles if r.builtin} == BUILTIN_ROLES
    finally:
        await engine.dispose()
