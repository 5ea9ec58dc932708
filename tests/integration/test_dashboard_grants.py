"""The dashboard keeps the same grant rule as the API, and rotation is never replayed."""

from __future__ import annotations

import html
import re

import httpx
from sqlalchemy import update

from akener.accounts.models import Role
from akener.db.engine import begin_write
from akener.keys.events import record_key_change
from akener.keys.models import ApiKey, KeyStatus
from akener.runtime import Runtime
from tests.factories import (
    SECRET_RE,
    bearer,
    make_key,
    make_role,
    make_user,
    sign_in,
    sign_in_owner,
)
from tests.integration.test_dashboard_key_page import load, rotate_token, whoami


async def _editor(web: httpx.AsyncClient, rt: Runtime) -> str:
    await make_user(rt, "editor@example.com", "editor")
    return await sign_in(web, "editor@example.com")


async def test_an_editor_cannot_rotate_a_key_wider_than_them(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    csrf = await _editor(web, rt)
    wide, wide_key = await make_key(rt, "Wide", scopes=["api_keys.delete", "audit.read"])
    page = (await web.get(f"/manage/api-keys/{wide.id}")).text
    assert re.search(r'disabled title="You can rotate, switch on or extend only[^"]*">Rotate', page)
    token = await rotate_token(web, wide.id)
    refused = await web.post(
        f"/manage/api-keys/{wide.id}/rotate",
        data={"csrf_token": csrf, "grace_period_seconds": "0", "rotate_token": token},
    )
    assert refused.status_code == 403 and "api_keys.delete" in html.unescape(refused.text)
    assert not SECRET_RE.search(refused.text)
    assert (await load(rt, wide.id)).digest == wide.digest
    assert await whoami(web, wide_key) == 200


async def test_an_editor_cannot_switch_a_wider_key_back_on_but_may_switch_it_off(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    csrf = await _editor(web, rt)
    wide, wide_key = await make_key(rt, "Wide", scopes=["api_keys.delete"])
    url = f"/manage/api-keys/{wide.id}/status"
    off = await web.post(url, data={"csrf_token": csrf, "status": "INACTIVE"})
    assert off.status_code == 303
    assert await whoami(web, wide_key) == 401
    page = (await web.get(f"/manage/api-keys/{wide.id}")).text
    assert re.search(
        r'disabled title="You can rotate, switch on or extend only[^"]*">Activate', page
    )
    on = await web.post(url, data={"csrf_token": csrf, "status": "ACTIVE"})
    assert on.status_code == 403
    assert (await load(rt, wide.id)).status == KeyStatus.INACTIVE.value
    assert await whoami(web, wide_key) == 401


async def test_an_editor_may_rotate_a_key_within_their_permissions(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    csrf = await _editor(web, rt)
    narrow, _ = await make_key(rt, "Narrow", scopes=["api_keys.read"])
    token = await rotate_token(web, narrow.id)
    answer = await web.post(
        f"/manage/api-keys/{narrow.id}/rotate",
        data={"csrf_token": csrf, "grace_period_seconds": "0", "rotate_token": token},
    )
    assert answer.status_code == 200 and SECRET_RE.search(answer.text)


async def test_a_replayed_rotation_lands_on_the_key_page_without_rotating(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    csrf = await sign_in_owner(web, rt)
    row, _ = await make_key(rt, "Replay", scopes=[])
    form = {"csrf_token": csrf, "grace_period_seconds": "3600"}
    form["rotate_token"] = await rotate_token(web, row.id)
    first = await web.post(f"/manage/api-keys/{row.id}/rotate", data=form)
    assert first.status_code == 200
    new = SECRET_RE.findall(first.text)[0]
    after_first = await load(rt, row.id)

    replay = await web.post(f"/manage/api-keys/{row.id}/rotate", data=form)  # reload / back
    assert replay.status_code == 303
    assert replay.headers["location"] == f"/manage/api-keys/{row.id}"
    after_replay = await load(rt, row.id)
    assert (after_replay.digest, after_replay.previous_digest, after_replay.rotated_at) == (
        after_first.digest,
        after_first.previous_digest,
        after_first.rotated_at,
    )
    landed = await web.get(replay.headers["location"])
    assert "already done" in html.unescape(landed.text)
    assert new not in landed.text and not SECRET_RE.search(landed.text)
    assert await whoami(web, new) == 200

    forged = await web.post(
        f"/manage/api-keys/{row.id}/rotate", data={**form, "rotate_token": "0" * 64}
    )
    assert forged.status_code == 303 and (await load(rt, row.id)).digest == after_first.digest


async def test_a_rotate_token_is_bound_to_the_session(web: httpx.AsyncClient, rt: Runtime) -> None:
    csrf = await sign_in_owner(web, rt)
    row, _ = await make_key(rt, "Bound", scopes=[])
    token = await rotate_token(web, row.id)
    await make_user(rt, "other@example.com", "admin")
    web.cookies.clear()  # another browser
    other_csrf = await sign_in(web, "other@example.com")
    assert other_csrf != csrf
    answer = await web.post(
        f"/manage/api-keys/{row.id}/rotate",
        data={"csrf_token": other_csrf, "grace_period_seconds": "0", "rotate_token": token},
    )
    assert answer.status_code == 303 and (await load(rt, row.id)).digest == row.digest


async def test_a_get_on_an_action_url_lands_on_the_key_page(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    await sign_in_owner(web, rt)
    row, key = await make_key(rt, "Bookmarked", scopes=[])
    for action in ("rotate", "status"):
        answer = await web.get(
            f"/manage/api-keys/{row.id}/{action}", headers={"Host": "evil.example"}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/manage/api-keys/{row.id}"  # relative
    assert (await load(rt, row.id)).digest == row.digest
    assert await whoami(web, key) == 200


async def test_the_key_page_shows_suspended_scopes(web: httpx.AsyncClient, rt: Runtime) -> None:
    await sign_in_owner(web, rt)
    row, _ = await make_key(rt, "Old", scopes=["metrics.read", "deploy.run"])
    async with rt.sessionmaker() as session:  # as migration 0007 leaves it
        await begin_write(session)
        await session.execute(
            update(ApiKey).where(ApiKey.id == row.id).values(suspended_scopes=["metrics.read"])
        )
        await record_key_change(session, row.id)
        await session.commit()
    page = html.unescape((await web.get(f"/manage/api-keys/{row.id}")).text)
    assert "Suspended scopes: <code>metrics.read</code>" in page
    assert "metrics.read (suspended)" in page and "deploy.run (suspended)" not in page
    _, admin = await make_key(rt, "admin")
    read = await web.get(f"/api/v1/keys/{row.id}", headers=bearer(admin))
    assert read.json()["suspended_scopes"] == ["metrics.read"]


async def test_a_role_with_suspended_names_says_so_and_saving_grants_only_what_is_ticked(
    web: httpx.AsyncClient, rt: Runtime
) -> None:
    csrf = await sign_in_owner(web, rt)
    role = await make_role(rt, "Watchers", ["metrics.read", "audit.read"])
    async with rt.sessionmaker() as session:  # as migration 0007 leaves it
        await session.execute(
            update(Role).where(Role.id == role.id).values(suspended_permissions=["metrics.read"])
        )
        await session.commit()
    page = html.unescape((await web.get(f"/manage/roles/{role.id}")).text)
    assert "Suspended: <code>metrics.read</code>" in page
    assert not re.search(r'value="metrics.read"[^>]*checked', page)
    assert re.search(r'value="audit.read"[^>]*checked', page)
    form = {"csrf_token": csrf, "name": "Watchers", "description": "", "permission": "audit.read"}
    saved = await web.post(f"/manage/roles/{role.id}", data=form)
    assert saved.status_code == 303
    async with rt.sessionmaker() as session:
        stored = await session.get(Role, role.id)
        assert stored is not None
        assert (stored.permissions, stored.suspended_permissions) == (["audit.read"], [])
    form["permission"] = ["audit.read", "metrics.read"]  # type: ignore[assignment]
    assert (await web.post(f"/manage/roles/{role.id}", data=form)).status_code == 303
    async with rt.sessionmaker() as session:
        stored = await session.get(Role, role.id)
        assert stored is not None and stored.granted == {"audit.read", "metrics.read"}
