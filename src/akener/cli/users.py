"""``akener users …``: create dashboard users from the shell (the operator is trusted)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from akener.cli.common import in_transaction, load_settings
from akener.cli.serve import setup_link
from akener.errors import Conflict, InvalidInput

app = typer.Typer(
    help="Create dashboard users and the owner setup link.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def read_password() -> str:
    """Prompt twice on a terminal; read one line from stdin when it is piped."""
    if sys.stdin.isatty():
        password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return password
    line = sys.stdin.readline()
    if not line:
        raise InvalidInput("no password on stdin; pipe one line, or run in a terminal")
    return line.rstrip("\r\n")


@app.command("create")
def create(
    email: Annotated[str, typer.Option("--email", help="The address the user signs in with.")],
    role: Annotated[
        list[str],
        typer.Option("--role", help="admin, editor, member or a custom role; repeat for more."),
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Display name [default: the email's local part].")
    ] = None,
) -> None:
    """Create a user. The first user becomes the owner (and needs --role admin)."""
    from pydantic import ValidationError

    from akener.accounts import service
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.accounts.schemas import UserCreate, first_error

    try:
        body = UserCreate(email=email, display_name=name or email.split("@")[0], roles=role)
    except ValidationError as exc:
        field, message = first_error(exc)
        raise InvalidInput(f"{field}: {message}" if field else message) from None
    password = read_password()
    settings = load_settings()

    async def work(session):  # type: ignore[no-untyped-def]
        user = await service.create_user(
            session,
            CLI_PRINCIPAL,
            email=body.email,
            display_name=body.display_name,
            password=password,
            roles=body.roles,
        )
        return user.email, user.is_owner, [r.name for r in user.roles]

    created_email, owner, roles = in_transaction(settings, work)
    what = "the owner" if owner else "a user"
    typer.echo(f"Created {what} {created_email} with roles: {', '.join(roles)}.", err=True)


@app.command("setup-link")
def setup_link_command(
    host: Annotated[
        str | None, typer.Option(help="Host shown in the link [default: AKENER_HOST].")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port shown in the link [default: AKENER_PORT].")
    ] = None,
) -> None:
    """Print a fresh one-time owner setup link (valid 24 hours) while no user exists."""
    settings = load_settings()
    link = setup_link(settings, host or settings.host, port or settings.port)
    if link is None:
        raise Conflict("the owner account already exists; sign in at /login instead")
    typer.echo(link)
