"""Every dashboard route, crossed with {anonymous, lacking its permission, holding it}.

The table below must name every route the dashboard has (a test checks), so a new page cannot
ship without being put through the matrix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from akener.accounts.permissions import ALL_PERMISSIONS, CLI_PRINCIPAL
from akener.app import AkenerApp
from akener.db.engine import begin_write
from akener.events import service as events_service
from akener.events.models import WebhookDelivery
from akener.runtime import Runtime
from akener.web import (
    audit,
    auth,
    key_limits,
    key_page,
    keys,
    overview,
    owners,
    roles,
    users,
    webhooks,
)
from tests.factories import csrf_of, make_key, make_role, make_user, sign_in

# (method, path, permissions the route needs); None marks routes open to everyone.
ROUTES: list[tuple[str, str, tuple[str, ...] | None]] = [
    ("GET", "/", None),
    ("GET", "/manage", None),
    ("GET", "/setup", None),
    ("POST", "/setup", None),
    ("GET", "/login", None),
    ("POST", "/login", None),
    ("POST", "/logout", ()),
    ("GET", "/manage/api-keys", ("api_keys.read",)),
    ("GET", "/manage/api-keys/new", ("api_keys.read", "api_keys.write")),
    ("POST", "/manage/api-keys", ("api_keys.write",)),
    ("POST", "/manage/api-keys/{key_id}/status", ("api_keys.write",)),
    ("POST", "/manage/api-keys/bulk", ("api_keys.write",)),
    ("GET", "/manage/api-keys/{key_id}/delete", ("api_keys.read",)),
    ("POST", "/manage/api-keys/{key_id}/delete", ("api_keys.delete",)),
    ("GET", "/manage/api-keys/{key_id}", ("api_keys.read",)),
    ("POST", "/manage/api-keys/{key_id}/rotate", ("api_keys.write",)),
    ("GET", "/manage/api-keys/{key_id}/rotate", ("api_keys.read",)),
    ("GET", "/manage/api-keys/{key_id}/status", ("api_keys.read",)),
    ("POST", "/manage/api-keys/{key_id}/limits", ("api_keys.write",)),
    ("GET", "/manage/owners", ("api_keys.read",)),
    ("POST", "/manage/api-keys/{key_id}/leaked", ("api_keys.write",)),
    ("GET", "/manage/api-keys/{key_id}/leaked", ("api_keys.read",)),
    ("GET", "/manage/audit", ("audit.read",)),
    ("GET", "/manage/overview/{figure}.csv", ("api_keys.read",)),
    ("GET", "/manage/webhooks", ("webhooks.read",)),
    ("POST", "/manage/webhooks", ("webhooks.write",)),
    ("GET", "/manage/webhooks/{webhook_id}", ("webhooks.read",)),
    ("POST", "/manage/webhooks/{webhook_id}", ("webhooks.write",)),
    ("GET", "/manage/webhooks/{webhook_id}/delete", ("webhooks.read",)),
    ("POST", "/manage/webhooks/{webhook_id}/delete", ("webhooks.write",)),
    ("POST", "/manage/webhooks/{webhook_id}/deliveries/{delivery_id}/resend", ("webhooks.write",)),
    ("GET", "/manage/users", ("users.read",)),
    ("POST", "/manage/users", ("users.write",)),
    ("GET", "/manage/users/{user_id}", ("users.read",)),
    ("POST", "/manage/users/{user_id}/roles", ("users.write",)),
    ("POST", "/manage/users/{user_id}/status", ("users.write",)),
    ("GET", "/manage/users/{user_id}/delete", ("users.read",)),
    ("POST", "/manage/users/{user_id}/delete", ("users.write",)),
    ("GET", "/manage/roles", ("roles.read",)),
    ("POST", "/manage/roles", ("roles.write",)),
    ("GET", "/manage/roles/{role_id}", ("roles.read",)),
    ("POST", "/manage/roles/{role_id}", ("roles.write",)),
    ("GET", "/manage/roles/{role_id}/delete", ("roles.read",)),
    ("POST", "/manage/roles/{role_id}/delete", ("roles.write",)),
]
GUARDED = [r for r in ROUTES if r[2]]


def test_the_matrix_names_every_dashboard_route() -> None:
    actual = {
        (method, route.path)
        for module in (
            auth,
            overview,
            keys,
            key_page,
            key_limits,
            owners,
            users,
            roles,
            audit,
            webhooks,
        )
        for route in module.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert actual == {(m, p) for m, p, _ in ROUTES}


async def _client(app: AkenerApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://akener.test")


@pytest.fixture
async def clients(app: AkenerApp) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """Anonymous, lacking and holding clients."""
    made = [await _client(app) for _ in range(3)]
    yield tuple(made)
    for client in made:
        await client.aclose()


async def _fill(runtime: Runtime, path: str) -> str:
    key, _ = await make_key(runtime, "target key", scopes=[])
    target = await make_user(runtime, "target@example.com", "member")
    role = await make_role(runtime, "Spare", ["api_keys.read"])
    hook, delivery = await _webhook(runtime)
    return path.format(
        key_id=key.id,
        user_id=target.id,
        role_id=role.id,
        webhook_id=hook,
        delivery_id=delivery,
        figure="unused",
    )


async def _webhook(runtime: Runtime) -> tuple[str, str]:
    """A webhook endpoint with one delivery (of the key made after it)."""
    async with runtime.sessionmaker() as session:
        await begin_write(session)
        hook, _ = await events_service.create_endpoint(
            session,
            CLI_PRINCIPAL,
            # Loopback, registered past the policy: the sender refuses to connect, nothing leaves.
            url="http://127.0.0.1:9/hook",
            events=["key.created"],
            description="",
            box=runtime.box,
            allow_private=True,
            max_endpoints=100,
        )
        await session.commit()
    await make_key(runtime, "announced", scopes=[])
    async with runtime.sessionmaker() as session:
        delivery = await session.scalar(select(WebhookDelivery.id))
    assert delivery is not None
    return hook.id, delivery


def _body(path: str, csrf: str) -> dict[str, str]:
    data = {"csrf_token": csrf, "name": "Matrix", "status": "INACTIVE", "active": "false"}
    data["grace_period_seconds"] = "3600"
    # A public address no event reaches: it subscribes to an event no matrix test causes.
    data["url"] = "https://example.com/hook-2"
    data["events"] = "key.expired"
    if path == "/manage/users":
        data.update(email="new@example.com", display_name="New", password="x" * 12)
        data.update(password_confirm="x" * 12, role="member")
    return data


@pytest.mark.parametrize(
    ("method", "path", "needs"), GUARDED, ids=[f"{m} {p}" for m, p, _ in GUARDED]
)
async def test_route_refuses_anonymous_and_lacking_and_serves_holder(
    clients: tuple[httpx.AsyncClient, ...],
    runtime: Runtime,
    method: str,
    path: str,
    needs: tuple[str, ...],
) -> None:
    anonymous, lacking, holding = clients
    url = await _fill(runtime, path)
    missing = needs[-1] if needs else None
    await make_role(runtime, "Almost", [p for p in ALL_PERMISSIONS if p != missing])
    await make_user(runtime, "lacking@example.com", "Almost")
    await make_user(runtime, "owner@example.com", "admin", owner=True)

    anon_csrf = csrf_of((await anonymous.get("/login")).text)
    answer = await anonymous.request(
        method, url, data=_body(path, anon_csrf) if method == "POST" else None
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")

    if missing is not None:
        csrf = await sign_in(lacking, "lacking@example.com")
        refused = await lacking.request(
            method, url, data=_body(path, csrf) if method == "POST" else None
        )
        assert refused.status_code == 403, refused.text
        assert missing in refused.text
        assert refused.headers["content-type"].startswith("text/html")

    csrf = await sign_in(holding, "owner@example.com")
    served = await holding.request(
        method, url, data=_body(path, csrf) if method == "POST" else None
    )
    assert served.status_code in (200, 303), served.text
