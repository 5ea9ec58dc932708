"""The ``akener`` command: one Typer app, each concern adds its commands."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from akener.cli import audit, db, keys, scan, serve, users, webhooks
from akener.errors import AkenerError
from akener.textsafe import printable

# Nothing here imports SQLAlchemy, pydantic or the services: `akener --help` loads only Typer
# (bench/cli_startup.py; tests/integration/test_cli_ops.py holds the line).

app = typer.Typer(
    name="akener",
    help="Self-hosted API key service. Run 'akener serve' to start it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rendering it with rich costs more than the rest of `akener --help` together.
    rich_markup_mode=None,
)


@app.callback()
def options(
    home: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            envvar="AKENER_HOME",
            help="The installation's directory, with its .env and SQLite database"
            " (default: the working directory).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Self-hosted API key service. Run 'akener serve' to start it."""
    if home is not None:
        from akener.installation.home import HOME_VARIABLE, home_directory

        # Every command (and the server's workers) finds the installation through it.
        os.environ[HOME_VARIABLE] = str(home_directory(home))


app.command("serve")(serve.serve)
app.command("scan")(scan.scan)
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(users.app, name="users")
app.add_typer(webhooks.app, name="webhooks")


def main() -> None:
    """Entry point: an AkenerError becomes one line on stderr and exit status 1."""
    try:
        app()
    except AkenerError as exc:
        typer.echo(f"error: {printable(exc.message)}", err=True)
        sys.exit(1)
    except Exception as exc:
        # A database or disk failure (unreachable, full, read-only) is one line, not a traceback.
        from akener.cli.startup import startup_failure

        message = startup_failure(exc)
        if message is None:
            raise
        typer.echo(f"error: {message}", err=True)
        sys.exit(1)
