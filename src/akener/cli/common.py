"""What every CLI command shares: settings, a database session, one transaction per command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from akener.db.engine import begin_write, make_engine, make_sessionmaker
from akener.errors import AkenerError, ServiceUnavailable
from akener.keys.events import install_listeners
from akener.settings import Settings

T = TypeVar("T")


def load_settings() -> Settings:
    """Settings from the environment and ./.env."""
    return Settings()


def in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction, committed if it returns, rolled back if it raises."""

    async def _run() -> T:
        engine = make_engine(settings.database_url)
        try:
            sessionmaker = make_sessionmaker(engine)
            install_listeners(sessionmaker, [])
            async with sessionmaker() as session:
                await begin_write(session)
                result = await work(session)
                await session.commit()
                return result
        except AkenerError:
            raise
        except (OSError, DBAPIError) as exc:
            reason = getattr(exc, "orig", exc)
            raise ServiceUnavailable(
                f"database error ({type(reason).__name__}); is it reachable and migrated? "
                "('akener db upgrade')"
            ) from exc
        finally:
            await engine.dispose()

    return asyncio.run(_run())
