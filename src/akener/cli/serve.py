"""``akener serve``: prepare a secret and the schema, then run the server."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from akener.cli.common import in_transaction, load_settings
from akener.cli.db import migrate
from akener.errors import InvalidInput

if TYPE_CHECKING:
    from akener.settings import Settings


def setup_link(settings: Settings, host: str, port: int) -> str | None:
    """The one-time owner setup link, or None once any user exists."""
    from akener.accounts.service import count_users
    from akener.accounts.sessions import setup_token

    if in_transaction(settings, count_users) or settings.secret_key is None:
        return None
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - only displayed
    if ":" in shown:
        shown = f"[{shown}]"
    token = setup_token(settings.secret_key.get_secret_value().encode())
    return f"http://{shown}:{port}/setup?token={token}"


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind [default: AKENER_HOST or 127.0.0.1].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [default: AKENER_PORT or 8000].")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes [default: AKENER_WORKERS or 1].")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(help="HTTP server: granian or uvicorn [default: AKENER_SERVER or granian]."),
    ] = None,
) -> None:
    """Run akener. On SQLite it creates the database and a secret on first run."""
    from akener.settings import secret_problem, write_local_secret

    settings = load_settings()
    chosen = server or settings.server
    if chosen not in SERVERS:
        raise InvalidInput(f"unknown server {chosen!r}; choose one of: {', '.join(SERVERS)}")
    problem = secret_problem(settings)
    if problem and settings.secret_key is None and settings.is_sqlite:
        env_file = Path(".env").resolve()
        write_local_secret(env_file, secrets.token_urlsafe(48))
        typer.echo(
            f"Generated a new AKENER_SECRET_KEY in {env_file}. Keep it safe and keep it:"
            " without it no existing key can be verified.",
            err=True,
        )
        settings = load_settings()
    elif problem and not settings.is_sqlite:
        raise InvalidInput(f"{problem}; set a long random secret to run on PostgreSQL")
    elif problem:
        typer.echo(f"warning: {problem}", err=True)
    migrate(settings)
    os.environ["AKENER_SECRET_KEY"] = (
        settings.secret_key.get_secret_value() if settings.secret_key else ""
    )
    bind_host = host or settings.host
    bind_port = port or settings.port
    typer.echo(f"akener listening on http://{bind_host}:{bind_port} (API docs at /docs)", err=True)
    link = setup_link(settings, bind_host, bind_port)
    if link:
        typer.echo(
            f"No dashboard account exists yet. Create the owner at:\n  {link}\n"
            "(or run: akener users create --email you@example.com --role admin)",
            err=True,
        )
    SERVERS[chosen](bind_host, bind_port, workers or settings.workers, settings.log_level)


def run_uvicorn(host: str, port: int, workers: int, _log_level: str) -> None:
    """Serve with uvicorn (logging is configured by the app factory in each worker)."""
    import uvicorn

    uvicorn.run(
        "akener.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


def run_granian(host: str, port: int, workers: int, log_level: str) -> None:
    """Serve with granian; its own log lines go through akener's JSON formatter."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    Granian(
        "akener.app:create_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        websockets=False,
        log_level=LogLevels(log_level.lower()),
        log_access=False,
        log_dictconfig=granian_logging(log_level),
    ).serve()


def granian_logging(level: str) -> dict[str, Any]:
    """A logging dictConfig that sends granian's loggers to the root JSON handler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "akener.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "_granian": {"handlers": [], "propagate": True},
            "granian.access": {"handlers": [], "propagate": True},
        },
    }


# Measured in bench/ (bench/README.md): granian serves akener's hot path faster; uvicorn stays
# available for platforms without granian wheels.
SERVERS: dict[str, Callable[[str, int, int, str], None]] = {
    "granian": run_granian,
    "uvicorn": run_uvicorn,
}
