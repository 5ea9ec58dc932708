"""What every CLI command shares: settings, a database session, one transaction per command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from akener.db.engine import begin_write, engine_for, make_sessionmaker
from akener.db.errors import DATABASE_ERRORS, describe, is_database_error
from akener.errors import AkenerError, InvalidInput, ServiceUnavailable
from akener.installation.home import Installation, locate
from akener.installation.service import check_secrets
from akener.keys.events import install_listeners
from akener.settings import Settings, secret_problem

T = TypeVar("T")


def find_installation() -> Installation:
    """The installation of ``--dir``, ``AKENER_HOME`` or the working directory."""
    return locate()


def load_settings() -> Settings:
    """The settings of an existing installation with a usable secret, or one clear error.

    Every command but ``serve`` and ``db upgrade`` goes through here: it never creates a
    database, and it stops where ``serve`` would not run."""
    installation = find_installation()
    installation.require_database()
    problem = secret_problem(installation.settings)
    if problem:
        raise InvalidInput(f"{problem} (looked in {installation.env_file} and the environment)")
    return installation.settings


def in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction, committed if it returns, rolled back if it raises."""

    async def _run() -> T:
        engine = engine_for(settings)
        try:
            sessionmaker = make_sessionmaker(engine)
            install_listeners(sessionmaker, [])
            async with sessionmaker() as session:
                await begin_write(session)
                await check_secrets(session, settings.peppers(), str(find_installation().env_file))
                result = await work(session)
                await session.commit()
                return result
        except AkenerError:
            raise
        except DATABASE_ERRORS as exc:
            if not is_database_error(exc) or isinstance(exc, BrokenPipeError):
                raise  # a constraint violation, or stdout closed by `head`: not an outage
            reason = getattr(exc, "orig", None) or exc
            raise ServiceUnavailable(
                f"{describe(exc)} ({type(reason).__name__}); is it reachable and migrated? "
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
    if not number.isdigit():
        raise InvalidInput(f"{option} takes a duration such as 90d, 12h, 30m or 45s")
    return timedelta(seconds=int(number) * _UNITS[unit])


def parse_instant(text: str, option: str) -> datetime:
    """An ISO 8601 date or date-time; UTC when it names no zone."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{option} takes an ISO 8601 date or time, e.g. 2027-03-01") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when
