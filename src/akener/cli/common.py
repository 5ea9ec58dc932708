"""What every CLI command shares: settings, a database session, one transaction per command.

Heavy modules (SQLAlchemy, pydantic-settings, the services) are imported inside the functions
that need them, so ``akener --help`` and argument errors answer at once (bench/cli_startup.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import typer

from akener import durations
from akener.errors import AkenerError, InvalidInput, ServiceUnavailable
from akener.instants import parse_instant as _parse_instant

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from akener.installation.home import Installation
    from akener.settings import Settings
    from akener.verify.hostcounter import HostChangeCounter

T = TypeVar("T")


def find_installation() -> Installation:
    """The installation of ``--dir``, ``AKENER_HOME`` or the working directory; a bad setting
    is one clear error line."""
    from pydantic import ValidationError

    from akener.installation.home import locate

    try:
        return locate()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "AKENER_" + str(first["loc"][0]).upper() if first["loc"] else "a setting"
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidInput(message if message.startswith(name) else f"{name}: {message}") from None


def load_settings() -> Settings:
    """The settings of an existing installation with a usable secret, or one clear error.

    Every command but ``serve`` and ``db upgrade`` goes through here: it never creates a
    database, and it stops where ``serve`` would not run."""
    from akener.settings import secret_problem

    installation = find_installation()
    installation.require_database()
    problem = secret_problem(installation.settings)
    if problem:
        raise InvalidInput(f"{problem} (looked in {installation.env_file} and the environment)")
    return installation.settings


def in_transaction(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction, committed if it returns, rolled back if it raises."""
    from akener.db.engine import begin_write, engine_for, make_sessionmaker
    from akener.db.errors import DATABASE_ERRORS, describe, is_database_error
    from akener.installation.service import check_secrets
    from akener.keys.events import install_listeners
    from akener.verify.hostcounter import open_host_counter

    async def _run() -> T:
        engine = engine_for(settings)
        counter: HostChangeCounter | None = None
        try:
            sessionmaker = make_sessionmaker(engine)
            # On PostgreSQL the servers of this host learn of the change before the command ends.
            if not settings.is_sqlite:
                counter = await open_host_counter(engine, settings.change_counter_dir)
            install_listeners(sessionmaker, [counter.bump] if counter is not None else [])
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
            if counter is not None:
                counter.close()
            await engine.dispose()

    return asyncio.run(_run())


# What a shell reports for a process ended by SIGPIPE (128 + 13): `set -o pipefail` accepts it.
CLOSED_PIPE_STATUS = 141


@contextlib.contextmanager
def quiet_on_closed_pipe() -> Iterator[None]:
    """End quietly (status 141, no traceback) when the reader of stdout goes away (``| head``)."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush cannot complain again
        # (the recipe in the Python docs, "Note on SIGPIPE").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(CLOSED_PIPE_STATUS) from None


def parse_duration(
    text: str, option: str, *, allow_zero: bool = False, maximum: timedelta | None = None
) -> timedelta:
    """An option's duration through the one parser (akener.durations), as an InvalidInput."""
    try:
        return durations.parse_duration(text, option, allow_zero=allow_zero, maximum=maximum)
    except durations.DurationError as exc:
        raise InvalidInput(str(exc), field=option) from None


def parse_instant(text: str, option: str) -> datetime:
    """An ISO 8601 date or date-time; UTC when it names no zone."""
    return _parse_instant(text, option)
