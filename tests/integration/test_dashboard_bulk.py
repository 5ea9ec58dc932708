"""Bulk actions on the keys page: one confirmation naming how many, one audit event per key,
and a refusal on any key changes none of them."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from akener.audit.models import AuditEvent
from akener.keys.models import ApiKey, KeyStatus
from akener.runtime import Runtime
from tests.factories import make_key, make_role, make_user, sign_in, sign_in_owner

URL = "/manage/api-keys/bulk"


async def _statuses(runtime: Runtime) -> dict[str, str]:
    async with runtime.sessionmaker() as session:
        return {k.name: k.status for k in (await session.execute(select(ApiKey))).scalars()}


async def _events(runtime: Runtime, action: str) -> int:
    async with runtime.sessionmaker() as session:
        stmt = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        return int((await session.execute(stmt)).scalar_one())


async def test_confirm_then_deactivate_activate_and_delete_many(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    csrf = await sign_in_owner(client, runtime)
    rows = [(await make_key(runtime, f"robot-{n}", scopes=[]))[0] for n in range(5)]
    ids = [r.id for r in rows[:3]]
    page = await client.get("/manage/api-keys")
    assert 'id="bulk-form"' in page.text and 'form="bulk-form"' in page.text
    body = {"csrf_token": csrf, "action": "deactivate", "key": ids, "return_to": "/manage/api-keys"}
    asked = await client.post(URL, data=body)
    assert asked.status_code == 200 and "Deactivate 3 keys?" in asked.text
    assert all(s == "ACTIVE" for s in (await _statuses(runtime)).values())  # nothing yet

    done = await client.post(URL, data={**body, "confirmed": "yes"})
    assert done.status_code == 303
    statuses = await _statuses(runtime)
    assert [statuses[f"robot-{n}"] for n in range(5)] == ["INACTIVE"] * 3 + ["ACTIVE"] * 2
    assert await _events(runtime, "key.deactivated") == 3  # one event per key
    flashed = await client.get("/manage/api-keys")
    assert "3 keys deactivated." in flashed.text

    await client.post(URL, data={**body, "action": "activate", "confirmed": "yes"})
    assert set((await _statuses(runtime)).values()) == {"ACTIVE"}
    before = await _events(runtime, "key.deleted")
    await client.post(URL, data={**body, "action": "delete", "confirmed": "yes"})
    assert sorted(await _statuses(runtime)) == ["robot-3", "robot-4"]
    assert await _events(runtime, "key.deleted") == before + 3  # one event per key

    empty = await client.post(URL, data={"csrf_token": csrf, "action": "delete"})
    assert empty.status_code == 303
    assert sorted(await _statuses(runtime)) == ["robot-3", "robot-4"]


async def test_activation_including_a_wider_key_is_refused_whole(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_role(runtime, "Keeper", ["api_keys.read", "api_keys.write"])
    await make_user(runtime, "keeper@example.com", "Keeper")
    csrf = await sign_in(client, "keeper@example.com")
    narrow = [
        (await make_key(runtime, f"narrow-{n}", scopes=[], status=KeyStatus.INACTIVE))[0]
        for n in range(2)
    ]
    wide, _ = await make_key(runtime, "wide", scopes=["users.write"], status=KeyStatus.INACTIVE)
    ids = [narrow[0].id, wide.id, narrow[1].id]
    body = {"csrf_token": csrf, "action": "activate", "key": ids, "confirmed": "yes"}
    refused = await client.post(URL, data=body)
    assert refused.status_code == 403
    assert set((await _statuses(runtime)).values()) == {"INACTIVE"}  # not even the narrow ones
    no_delete = await client.post(URL, data={**body, "action": "delete", "key": narrow[0].id})
    assert no_delete.status_code == 403 and "api_keys.delete" in no_delete.text
    assert len(await _statuses(runtime)) == 3
