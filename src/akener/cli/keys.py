"""``akener keys …``: the trusted bootstrap for keys (the operator holds the database)."""

from __future__ import annotations

from typing import Annotated

import typer

from akener.accounts.permissions import CLI_PRINCIPAL
from akener.cli.common import in_transaction, load_settings
from akener.errors import InvalidInput
from akener.keys import service, tokens
from akener.keys.models import KeyStatus
from akener.keys.peppers import Peppers
from akener.keys.schemas import KeyCreate, KeyCreated, KeyRead
from akener.settings import Settings

app = typer.Typer(help="Create, list, switch on/off and delete API keys.", no_args_is_help=True)


def _peppers(settings: Settings) -> Peppers:
    secrets_by_version = settings.peppers()
    if settings.secret_key_version not in secrets_by_version:
        raise InvalidInput("AKENER_SECRET_KEY is not set; run 'akener serve' once or set it")
    return Peppers.from_secrets(secrets_by_version, settings.secret_key_version)


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="What uses the key, e.g. 'GitHub Actions'.")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="A scope to grant; repeat for more.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new key as JSON.")] = False,
) -> None:
    """Create a key. Its plaintext alone goes to stdout: save it, it is never shown again."""
    from pydantic import ValidationError

    try:
        body = KeyCreate(name=name, scopes=scope or [])
    except ValidationError as exc:
        raise InvalidInput(
            "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        ) from None
    settings = load_settings()
    peppers = _peppers(settings)

    async def work(session):  # type: ignore[no-untyped-def]
        return await service.create_key(
            session, CLI_PRINCIPAL, name=body.name, scopes=body.scopes, peppers=peppers
        )

    row, plaintext = in_transaction(settings, work)
    if as_json:
        created = KeyCreated(**KeyRead.model_validate(row).model_dump(), key=plaintext)
        typer.echo(created.model_dump_json())
    else:
        typer.echo(plaintext)
    typer.echo(
        f"Created key {row.name!r} (id {row.id}). Save it now: it cannot be shown again.", err=True
    )


@app.command("list")
def list_(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON lines, one key each.")
    ] = False,
) -> None:
    """List keys, newest first."""
    settings = load_settings()

    async def work(session):  # type: ignore[no-untyped-def]
        rows, cursor = await service.list_keys(session, CLI_PRINCIPAL, limit=service.MAX_PAGE)
        found = list(rows)
        while cursor is not None:
            rows, cursor = await service.list_keys(
                session, CLI_PRINCIPAL, limit=service.MAX_PAGE, cursor=cursor
            )
            found.extend(rows)
        return [KeyRead.model_validate(r) for r in found]

    keys = in_transaction(settings, work)
    if as_json:
        for key in keys:
            typer.echo(key.model_dump_json())
        return
    if not keys:
        typer.echo("No keys yet. Create one with: akener keys create --name NAME", err=True)
        return
    typer.echo(
        f"{'ID':32}  {'STATUS':8}  {'KEY':32}  {'LAST USED (UTC)':19}  {'REQUESTS':>9}  NAME"
    )
    for key in keys:
        used = key.last_used_at.strftime("%Y-%m-%d %H:%M:%S") if key.last_used_at else "never"
        tail = tokens.table_tail(key.masked_key)
        typer.echo(
            f"{key.id:32}  {key.status:8}  {tail:32}  {used:19}  {key.request_count:>9}  {key.name}"
        )


def _set_status(key_id: str, status: KeyStatus) -> None:
    settings = load_settings()

    async def work(session):  # type: ignore[no-untyped-def]
        return await service.set_key_status(session, CLI_PRINCIPAL, key_id, status)

    row = in_transaction(settings, work)
    typer.echo(f"Key {row.name!r} ({row.id}) is now {row.status}.", err=True)


@app.command("activate")
def activate(key_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Switch a key on."""
    _set_status(key_id, KeyStatus.ACTIVE)


@app.command("deactivate")
def deactivate(key_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Switch a key off: it is refused from now on, and can be switched on again."""
    _set_status(key_id, KeyStatus.INACTIVE)


@app.command("delete")
def delete(
    key_id: Annotated[str, typer.Argument(metavar="ID")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a key for good (consider 'deactivate' first)."""
    if not yes:
        typer.confirm(f"Delete key {key_id} permanently? This cannot be undone.", abort=True)
    settings = load_settings()

    async def work(session):  # type: ignore[no-untyped-def]
        return await service.delete_key(session, CLI_PRINCIPAL, key_id)

    row = in_transaction(settings, work)
    typer.echo(f"Deleted key {row.name!r} ({row.id}).", err=True)
