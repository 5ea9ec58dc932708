"""``akener webhooks …``: register endpoints, read their delivery log, resend."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from akener.cli.common import in_transaction, load_settings, parse_duration, quiet_on_closed_pipe

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from akener.events.models import WebhookDelivery, WebhookEndpoint
    from akener.events.sealing import SecretBox
    from akener.settings import Settings

app = typer.Typer(
    help="Signed webhooks: register endpoints, see deliveries, resend.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _box(settings: Settings) -> SecretBox:
    from akener.events.sealing import SecretBox

    return SecretBox.from_secrets(settings.peppers(), settings.secret_key_version)


@app.command("create")
def create(
    url: Annotated[str, typer.Option("--url", help="Where to POST events (http or https).")],
    event: Annotated[
        list[str], typer.Option("--event", help="An event type to send, e.g. key.deactivated.")
    ],
    description: Annotated[
        str | None, typer.Option("--description", help="A note for people (none if not given).")
    ] = None,
) -> None:
    """Register an endpoint. Its signing secret alone goes to stdout, this once."""
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.events import service

    settings = load_settings()

    async def work(session: AsyncSession) -> tuple[WebhookEndpoint, str]:
        return await service.create_endpoint(
            session,
            CLI_PRINCIPAL,
            url=url,
            events=event,
            description=description or "",
            box=_box(settings),
            allow_private=settings.webhooks_allow_private,
            max_endpoints=settings.webhooks_max_endpoints,
        )

    endpoint, secret = in_transaction(settings, work)
    typer.echo(f"Webhook {endpoint.id} created; its signing secret follows.", err=True)
    typer.echo(secret)


@app.command("list")
def list_() -> None:
    """Every endpoint: id, events, url."""
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.events import service

    settings = load_settings()

    async def work(session: AsyncSession) -> list[WebhookEndpoint]:
        return await service.list_endpoints(session, CLI_PRINCIPAL)

    rows = in_transaction(settings, work)
    with quiet_on_closed_pipe():
        for row in rows:
            typer.echo(f"{row.id}  {','.join(row.events)}  {row.url}")
    if not rows:
        typer.echo(
            "No webhooks yet. Add one with: akener webhooks create --url U --event E", err=True
        )


@app.command("delete")
def delete(webhook_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Delete an endpoint and its delivery log."""
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.events import service

    settings = load_settings()

    async def work(session: AsyncSession) -> None:
        await service.delete_endpoint(session, CLI_PRINCIPAL, webhook_id)

    in_transaction(settings, work)
    typer.echo(f"Webhook {webhook_id} deleted.", err=True)


@app.command("rotate-secret")
def rotate_secret(
    webhook_id: Annotated[str, typer.Argument(metavar="ID")],
    overlap: Annotated[
        str, typer.Option("--overlap", help="How long the old secret also signs: 1d, 12h, 0s.")
    ] = "1d",
) -> None:
    """A new signing secret (to stdout); the old one keeps signing during the overlap."""
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.events import service

    settings = load_settings()
    span = parse_duration(overlap, "--overlap", allow_zero=True)

    async def work(session: AsyncSession) -> tuple[WebhookEndpoint, str]:
        return await service.rotate_secret(
            session, CLI_PRINCIPAL, webhook_id, overlap=span, box=_box(settings)
        )

    _, secret = in_transaction(settings, work)
    typer.echo(secret)


@app.command("deliveries")
def deliveries(
    webhook_id: Annotated[str, typer.Argument(metavar="ID")],
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 50,
) -> None:
    """The endpoint's delivery log as JSON lines."""
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.events import service
    from akener.events.schemas import DeliveryRead

    settings = load_settings()

    async def work(session: AsyncSession) -> list[WebhookDelivery]:
        return await service.list_deliveries(session, CLI_PRINCIPAL, webhook_id, limit=limit)

    rows = in_transaction(settings, work)
    with quiet_on_closed_pipe():
        for row in rows:
            typer.echo(json.dumps(DeliveryRead.of(row).model_dump(mode="json")))


@app.command("resend")
def resend(
    webhook_id: Annotated[str, typer.Argument(metavar="ID")],
    delivery_id: Annotated[str, typer.Argument(metavar="DELIVERY_ID")],
) -> None:
    """Make a delivery due now; the running server's sender sends it within a second."""
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.events import service

    settings = load_settings()

    async def work(session: AsyncSession) -> None:
        await service.resend_delivery(session, CLI_PRINCIPAL, webhook_id, delivery_id)

    in_transaction(settings, work)
    typer.echo(f"Delivery {delivery_id} is due now.", err=True)
