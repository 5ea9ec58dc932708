"""``akener serve``: prepare a secret and the schema, then run the server."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from akener.cli.common import find_installation, in_transaction
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


def announce_setup(settings: Settings, host: str, port: int) -> None:
    """While no user exists, say how to create the owner. The link itself (a credential) is
    shown only on a terminal, never into a log file or a journal."""
    link = setup_link(settings, host, port)
    if link is None:
        return
    if sys.stderr.isatty():
        typer.echo(
            f"No dashboard account exists yet. Create the owner at (valid 24 hours):\n  {link}\n"
            "(or run: akener users create --email you@example.com --role admin)",
            err=True,
        )
    else:
        typer.echo(
            "No dashboard account exists yet. Run 'akener users setup-link' for a one-time"
            " owner setup link, or 'akener users create --email you@example.com --role admin'.",
            err=True,
        )


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
    from akener.cli.install import prepare, refuse_unusable_secret
    from akener.cli.startup import check_database, check_port
    from akener.installation.home import HOME_VARIABLE

    installation = find_installation()
    chosen = server or installation.settings.server
    if chosen not in SERVERS:
        raise InvalidInput(f"unknown server {chosen!r}; choose one of: {', '.join(SERVERS)}")
    refuse_unusable_secret(installation)
    check_port(host or installation.settings.host, port or installation.settings.port)
    check_database(installation.settings)
    settings = prepare(installation)
    # Workers read the same installation: its directory and the secret just checked.
    os.environ[HOME_VARIABLE] = str(installation.home)
    os.environ["AKENER_SECRET_KEY"] = (
        settings.secret_key.get_secret_value() if settings.secret_key else ""
    )
    bind_host = host or settings.host
    bind_port = port or settings.port
    typer.echo(f"akener listening on http://{bind_host}:{bind_port} (API docs at /docs)", err=True)
    announce_setup(settings, bind_host, bind_port)
    with metrics_directory(settings):
        SERVERS[chosen](bind_host, bind_port, workers or settings.workers, settings.log_level)


@contextmanager
def metrics_directory(settings: Settings) -> Iterator[Path | None]:
    """The directory where this server's workers leave their numbers for ``/metrics``
    (docs/metrics.md): ``AKENER_METRICS_DIR`` emptied of a previous server's files, or a fresh
    one (in /dev/shm where there is one) that is removed when the server stops."""
    from akener.metrics.snapshot import prepare_directory

    if not settings.metrics_enabled:
        yield None
        return
    if settings.metrics_dir:
        directory = Path(settings.metrics_dir)
        prepare_directory(directory)
        yield directory
        return
    shm = Path("/dev/shm")  # noqa: S108 -- a private directory made with mkdtemp (mode 0700)
    made = Path(tempfile.mkdtemp(prefix="akener-metrics-", dir=shm if shm.is_dir() else None))
    os.environ["AKENER_METRICS_DIR"] = str(made)
    try:
        yield made
    finally:
        os.environ.pop("AKENER_METRICS_DIR", None)
        shutil.rmtree(made, ignore_errors=True)


# How long an idle keep-alive connection stays open. Proxies that reuse connections to akener
# must close idle ones sooner (docs/forward-auth.md sets 30 s), or a request can meet a
# connection akener is closing at that moment. 60 s is the most granian allows.
KEEP_ALIVE_SECONDS = 60


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
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


def run_granian(host: str, port: int, workers: int, log_level: str) -> None:
    """Serve with granian; its own log lines go through akener's JSON formatter."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings
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
        # granian closes a connection that sends no request headers for this long, idle
        # keep-alive connections included (measured: 30 s by default).
        http1_settings=HTTP1Settings(header_read_timeout=KEEP_ALIVE_SECONDS * 1000),
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
