"""What every CLI command shares: settings, a database session, one transaction per command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from akener.db.engine import begin_write, make_engine, make_sessionmaker
from akener.errors import AkenerError, InvalidInput, ServiceUnavailable
from akener.instants import ascii_int
from akener.instants import parse_instant as _parse_instant
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


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, option: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w`` (or a plain number of seconds)."""
    value = text.strip().lower()
    unit = value[-1:] if value[-1:] in _UNITS else "s"
    number = value[:-1] if value[-1:] in _UNITS else value
    count = ascii_int(number, max_digits=9)
    if count is None:
        raise InvalidInput(f"{option} takes a duration such as 90d, 12h, 30m or 45s")
    return timedelta(seconds=count * _UNITS[unit])


def parse_instant(text: str, option: str) -> datetime:
    """An ISO 8601 date or date-time; UTC when it names no zone."""
    return _parse_instant(text, option)
