"""Changing a key is granting it (docs/security.md), through the API, on every database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from akener.accounts.permissions import ALL_PERMISSIONS, CLI_PRINCIPAL, Principal
from akener.audit.models import AuditEvent
from akener.db.base import utcnow
from akener.db.engine import begin_write
from akener.errors import PermissionDenied
from akener.keys import grants, service
from akener.keys.events import record_key_change
from akener.keys.models import ApiKey, KeyStatus
from akener.runtime import Runtime
from tests.factories import bearer, make_key

WIDE = ["api_keys.read", "api_keys.delete", "audit.read"]
WRITER = ["api_keys.read", "api_keys.write"]


async def load(runtime: Runtime, key_id: str) -> ApiKey:
    async with runtime.sessionmaker() as session:
        row = await session.get(ApiKey, key_id)
    assert row is not None
    return row


async def whoami(client: httpx.AsyncClient, key: str) -> int:
    return (await client.get("/api/v1/whoami", headers=bearer(key))).status_code


async def test_a_narrower_key_cannot_rotate_a_wider_one(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, writer = await make_key(runtime, "writer", scopes=WRITER)
    wide, wide_key = await make_key(runtime, "wide", scopes=WIDE)
    answer = await client.post(
        f"/api/v1/keys/{wide.id}/rotate", json={"grace_period_seconds": 0}, headers=bearer(writer)
    )
    assert answer.status_code == 403, answer.text
    assert "api_keys.delete" in answer.text and "audit.read" in answer.text
    assert "akener_" not in answer.text
    assert (await load(runtime, wide.id)).digest == wide.digest
    assert await whoami(client, wide_key) == 200


async def test_a_key_holding_every_scope_may_rotate(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, writer = await make_key(runtime, "writer", scopes=[*WRITER, "deploy.run"])
    narrow, old = await make_key(runtime, "narrow", scopes=["api_keys.read", "deploy.run"])
    answer = await client.post(
        f"/api/v1/keys/{narrow.id}/rotate", json={"grace_period_seconds": 0}, headers=bearer(writer)
    )
    assert answer.status_code == 200, answer.text
    assert await whoami(client, old) == 401
    assert await whoami(client, answer.json()["key"]) == 200


async def test_a_narrower_key_may_deactivate_and_delete_but_not_reactivate(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, writer = await make_key(runtime, "writer", scopes=[*WRITER, "api_keys.delete"])
    wide, wide_key = await make_key(runtime, "wide", scopes=[*WIDE, "users.write"])
    url = f"/api/v1/keys/{wide.id}"
    off = await client.patch(url, json={"status": "INACTIVE"}, headers=bearer(writer))
    assert off.status_code == 200 and off.json()["status"] == "INACTIVE"
    assert await whoami(client, wide_key) == 401
    on = await client.patch(url, json={"status": "ACTIVE"}, headers=bearer(writer))
    assert on.status_code == 403 and "users.write" in on.json()["error"]["message"]
    assert (await load(runtime, wide.id)).status == "INACTIVE"
    assert await whoami(client, wide_key) == 401
    audit_actions = [e.action for e in await _events(runtime, wide.id)]
    assert "key.deactivated" in audit_actions and "key.activated" not in audit_actions
    gone = await client.delete(url, headers=bearer(writer))
    assert gone.status_code == 204
    assert "key.deleted" in [e.action for e in await _events(runtime, wide.id)]


async def _events(runtime: Runtime, key_id: str) -> list[AuditEvent]:
    async with runtime.sessionmaker() as session:
        stmt = select(AuditEvent).where(AuditEvent.target_id == key_id).order_by(AuditEvent.id)
        return list((await session.execute(stmt)).scalars())


async def test_a_narrower_key_may_shorten_but_not_extend_or_clear_expiry(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, writer = await make_key(runtime, "writer", scopes=WRITER)
    wide, _ = await make_key(runtime, "wide", scopes=WIDE)
    url = f"/api/v1/keys/{wide.id}"
    soon, later = utcnow() + timedelta(days=2), utcnow() + timedelta(days=30)
    async with runtime.sessionmaker() as session:
        await service.update_key(session, CLI_PRINCIPAL, wide.id, expires_at=later)
        await session.commit()
    shorter = await client.patch(url, json={"expires_at": soon.isoformat()}, headers=bearer(writer))
    assert shorter.status_code == 200, shorter.text
    for body in ({"expires_at": later.isoformat()}, {"expires_at": None}):
        refused = await client.patch(url, json=body, headers=bearer(writer))
        assert refused.status_code == 403, body
    assert (await load(runtime, wide.id)).expires_at == soon.replace(microsecond=soon.microsecond)


async def test_adding_scopes_is_granting_removing_is_not(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, writer = await make_key(runtime, "writer", scopes=[*WRITER, "deploy.run"])
    target, _ = await make_key(runtime, "target", scopes=["deploy.run", "billing.read"])
    url = f"/api/v1/keys/{target.id}"
    more = await client.patch(
        url, json={"scopes": ["deploy.run", "billing.read", "x.y"]}, headers=bearer(writer)
    )
    assert more.status_code == 403 and "x.y" in more.text
    fewer = await client.patch(url, json={"scopes": ["billing.read"]}, headers=bearer(writer))
    assert fewer.status_code == 200 and fewer.json()["scopes"] == ["billing.read"]
    back = await client.patch(
        url, json={"scopes": ["billing.read", "deploy.run"]}, headers=bearer(writer)
    )
    # Adding back what it holds is still widening a key that holds what the writer lacks.
    assert back.status_code == 403 and "billing.read" in back.text
    typo = await client.patch(url, json={"scopes": ["api_keys.reed"]}, headers=bearer(writer))
    assert typo.status_code == 422
    assert "unknown scope api_keys.reed; did you mean api_keys.read?" in typo.text
    actions = [e.action for e in await _events(runtime, target.id)]
    assert actions.count("key.scopes_changed") == 1


async def test_a_key_never_widens_or_lengthens_itself(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    me, key = await make_key(runtime, "self", scopes=[*WRITER, "deploy.run"])
    url = f"/api/v1/keys/{me.id}"
    later = utcnow() + timedelta(days=30)
    async with runtime.sessionmaker() as session:
        await service.update_key(session, CLI_PRINCIPAL, me.id, expires_at=later)
        await session.commit()
    for body in (
        {"expires_at": None},
        {"expires_at": (later + timedelta(days=1)).isoformat()},
        {"scopes": [*WRITER, "deploy.run", "api_keys.delete"]},
        {"scopes": [*WRITER, "deploy.run", "audit.read"]},
    ):
        refused = await client.patch(url, json=body, headers=bearer(key))
        assert refused.status_code == 403, body
    earlier = await client.patch(
        url, json={"expires_at": (later - timedelta(days=1)).isoformat()}, headers=bearer(key)
    )
    assert earlier.status_code == 200  # shortening its own life is allowed
    stored = await load(runtime, me.id)
    assert stored.scopes == [*WRITER, "deploy.run"]


async def test_a_key_never_switches_itself_back_on() -> None:
    # An inactive key cannot authenticate, so this is the service's own guard.
    row = ApiKey(id="a" * 32, scopes=["api_keys.write"], suspended_scopes=[], status="INACTIVE")
    actor = Principal(kind="key", id=row.id, permissions=frozenset(ALL_PERMISSIONS))
    with pytest.raises(PermissionDenied, match="cannot switch itself back on"):
        grants.require_may_change(actor, row, grants.Widening(reactivate=True))


async def test_a_key_rotates_itself_only_without_grace(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    me, key = await make_key(runtime, "self", scopes=WRITER)
    url = f"/api/v1/keys/{me.id}/rotate"
    for grace in (1, 3600):
        refused = await client.post(url, json={"grace_period_seconds": grace}, headers=bearer(key))
        assert refused.status_code == 403 and "grace_period_seconds 0" in refused.text
    assert (await load(runtime, me.id)).digest == me.digest
    answer = await client.post(url, json={"grace_period_seconds": 0}, headers=bearer(key))
    assert answer.status_code == 200
    assert await whoami(client, key) == 401  # no second live secret
    assert await whoami(client, answer.json()["key"]) == 200


async def test_concurrent_rotations_of_one_key_serialise(runtime: Runtime) -> None:
    """The row is locked: a second rotation sees the first one's result, never the old row."""
    row, _ = await make_key(runtime, "contended", scopes=[])
    seen: list[str] = []

    async def rotate() -> str:
        async with runtime.sessionmaker() as session:
            await begin_write(session)
            try:
                key, _ = await service.rotate_key(
                    session,
                    CLI_PRINCIPAL,
                    row.id,
                    grace_period_seconds=0,
                    peppers=runtime.peppers,
                    unchanged=lambda k: k.digest == row.digest,
                )
            except service.AlreadyRotated:
                await session.rollback()
                return "replayed"
            seen.append(key.digest)
            await asyncio.sleep(0.2)  # hold the lock while the other one waits
            await session.commit()
            return "rotated"

    results = await asyncio.gather(rotate(), rotate())
    assert sorted(results) == ["replayed", "rotated"]
    assert (await load(runtime, row.id)).digest == seen[0]


async def test_suspended_scopes_grant_nothing_until_granted_again(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    target, key = await make_key(runtime, "old", scopes=["webhooks.read", "incidents.read"])
    async with runtime.sessionmaker() as session:  # as migration 0007 leaves it
        await begin_write(session)
        await session.execute(
            update(ApiKey).where(ApiKey.id == target.id).values(suspended_scopes=["webhooks.read"])
        )
        await record_key_change(session, target.id)
        await session.commit()
    authz = await client.get("/authz", headers=bearer(key))
    assert authz.status_code == 200 and authz.headers["x-akener-scopes"] == "incidents.read"
    refused = await client.get("/authz?scope=webhooks.read", headers=bearer(key))
    assert refused.status_code == 403
    _, admin = await make_key(runtime, "admin")
    read = await client.get(f"/api/v1/keys/{target.id}", headers=bearer(admin))
    assert read.json()["suspended_scopes"] == ["webhooks.read"]

    _, writer = await make_key(runtime, "writer", scopes=[*WRITER, "incidents.read"])
    body = {"scopes": ["webhooks.read", "incidents.read"]}
    url = f"/api/v1/keys/{target.id}"
    assert (await client.patch(url, json=body, headers=bearer(writer))).status_code == 403
    _, granter = await make_key(
        runtime, "granter", scopes=[*WRITER, "incidents.read", "webhooks.read"]
    )
    granted = await client.patch(url, json=body, headers=bearer(granter))
    assert granted.status_code == 200 and granted.json()["suspended_scopes"] == []
    assert (await client.get("/authz?scope=webhooks.read", headers=bearer(key))).status_code == 200


async def test_names_in_akener_namespaces_must_be_real(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(
        runtime, "admin", scopes=[*ALL_PERMISSIONS, "incidents.write", "metrics:x"]
    )
    for scope, hint in (
        ("api_keys.reed", "did you mean api_keys.read?"),
        ("webhooks.writ", "did you mean webhooks.write?"),
        ("metrics", "did you mean metrics.read?"),
        ("audit.xyzzyplugh", "must be akener permissions"),
        ("users.everything", "unknown scope users.everything"),
    ):
        answer = await client.post(
            "/api/v1/keys", json={"name": scope, "scopes": [scope]}, headers=bearer(admin)
        )
        assert answer.status_code == 422 and hint in answer.text, answer.text
    ok = await client.post(
        "/api/v1/keys",
        json={"name": "free", "scopes": ["incidents.write", "metrics:x", "webhooks.read"]},
        headers=bearer(admin),
    )
    assert ok.status_code == 201, ok.text
    assert KeyStatus(ok.json()["status"]) is KeyStatus.ACTIVE
