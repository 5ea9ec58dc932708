"""Users and roles through the dashboard: owner protection, no granting beyond what you hold,
role create/edit/delete rules, and permissions as the union of roles."""

from __future__ import annotations

from html import unescape

import httpx
from sqlalchemy import select

from akener.accounts.models import Role, User
from akener.accounts.permissions import ALL_PERMISSIONS
from akener.app import AkenerApp
from akener.runtime import Runtime
from tests.factories import PASSWORD, make_role, make_user, sign_in

READS = [p for p in ALL_PERMISSIONS if p.endswith(".read")]


async def _user(runtime: Runtime, email: str) -> User:
    async with runtime.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        return user


async def _role_names(runtime: Runtime) -> list[str]:
    async with runtime.sessionmaker() as session:
        return sorted(r.name for r in (await session.execute(select(Role))).scalars())


async def test_nobody_else_can_demote_deactivate_or_delete_the_owner(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    owner = await make_user(runtime, "owner@example.com", "admin", owner=True)
    await make_user(runtime, "admin2@example.com", "admin")
    csrf = await sign_in(client, "admin2@example.com")
    member_id = (await _role_names_ids(runtime))["member"]
    for path, data in [
        (f"/manage/users/{owner.id}/status", {"active": "false"}),
        (f"/manage/users/{owner.id}/roles", {"role": member_id}),
        (f"/manage/users/{owner.id}/delete", {}),
    ]:
        answer = await client.post(path, data={"csrf_token": csrf, **data})
        assert answer.status_code == 403, path
        assert "owner" in answer.text
    kept = await _user(runtime, "owner@example.com")
    assert kept.is_active and [r.name for r in kept.roles] == ["admin"]


async def test_the_owner_keeps_admin_and_cannot_lock_themselves_out(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    owner = await make_user(runtime, "owner@example.com", "admin", owner=True)
    csrf = await sign_in(client, "owner@example.com")
    ids = await _role_names_ids(runtime)
    demote = await client.post(
        f"/manage/users/{owner.id}/roles", data={"csrf_token": csrf, "role": ids["member"]}
    )
    assert demote.status_code == 403 and "always keeps the admin role" in demote.text
    off = await client.post(
        f"/manage/users/{owner.id}/status", data={"csrf_token": csrf, "active": "false"}
    )
    assert off.status_code == 403
    both = await client.post(
        f"/manage/users/{owner.id}/roles",
        data={"csrf_token": csrf, "role": [ids["admin"], ids["member"]]},
    )
    assert both.status_code == 303
    assert [r.name for r in (await _user(runtime, "owner@example.com")).roles] == [
        "admin",
        "member",
    ]


async def _role_names_ids(runtime: Runtime) -> dict[str, str]:
    async with runtime.sessionmaker() as session:
        return {r.name: r.id for r in (await session.execute(select(Role))).scalars()}


async def test_nobody_assigns_a_role_beyond_what_they_hold(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_role(runtime, "People", [*READS, "users.write"])
    await make_user(runtime, "hr@example.com", "People")
    target = await make_user(runtime, "new@example.com", "member")
    csrf = await sign_in(client, "hr@example.com")
    ids = await _role_names_ids(runtime)
    for role in ("admin", "editor"):
        answer = await client.post(
            f"/manage/users/{target.id}/roles", data={"csrf_token": csrf, "role": ids[role]}
        )
        assert answer.status_code == 403 and f"cannot assign the role '{role}'" in unescape(
            answer.text
        )
    created = await client.post(
        "/manage/users",
        data={
            "csrf_token": csrf,
            "email": "x@example.com",
            "display_name": "X",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            "role": "editor",
        },
    )
    assert created.status_code == 403 and "cannot assign the role 'editor'" in unescape(
        created.text
    )
    ok = await client.post(
        "/manage/users",
        data={
            "csrf_token": csrf,
            "email": "y@example.com",
            "display_name": "Y",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            "role": "member",
        },
    )
    assert ok.status_code == 303
    assert [r.name for r in (await _user(runtime, "new@example.com")).roles] == ["member"]
    async with runtime.sessionmaker() as session:
        emails = sorted(u.email for u in (await session.execute(select(User))).scalars())
    assert emails == ["hr@example.com", "new@example.com", "y@example.com"]


async def test_nobody_changes_an_account_that_holds_more_than_they_do(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_role(runtime, "People", [*READS, "users.write"])
    await make_user(runtime, "hr@example.com", "People")
    editor = await make_user(runtime, "ed@example.com", "editor")
    csrf = await sign_in(client, "hr@example.com")
    for path in (f"/manage/users/{editor.id}/status", f"/manage/users/{editor.id}/delete"):
        answer = await client.post(path, data={"csrf_token": csrf, "active": "false"})
        assert answer.status_code == 403 and "holds permissions you do not" in answer.text
    assert (await _user(runtime, "ed@example.com")).is_active


async def test_role_rules_create_edit_delete(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await make_role(runtime, "RoleMaker", ["roles.read", "roles.write", "api_keys.read"])
    await make_user(runtime, "rm@example.com", "RoleMaker")
    csrf = await sign_in(client, "rm@example.com")

    async def post(path: str, **data: object) -> httpx.Response:
        return await client.post(path, data={"csrf_token": csrf, **data})  # type: ignore[dict-item]

    beyond = await post("/manage/roles", name="Deleters", permission="api_keys.delete")
    assert beyond.status_code == 403 and "api_keys.delete" in beyond.text
    operator = await post("/manage/roles", name="Ops", other_scopes="incidents.write")
    assert operator.status_code == 403  # an operator scope they do not hold either
    bad = await post("/manage/roles", name="<b>x</b>", permission="api_keys.read")
    assert bad.status_code == 422 and "&lt;b&gt;" in bad.text
    fake = await post("/manage/roles", name="Fake", other_scopes="api_keys.everything")
    assert fake.status_code == 422 and "Unknown scope api_keys.everything" in fake.text
    clash = await post("/manage/roles", name="ADMIN", permission="api_keys.read")
    assert clash.status_code == 409
    made = await post("/manage/roles", name="Readers", permission="api_keys.read")
    assert made.status_code == 303
    ids = await _role_names_ids(runtime)
    builtin = await post(
        f"/manage/roles/{ids['member']}", name="member", permission="api_keys.read"
    )
    assert builtin.status_code == 403 and "cannot be changed" in builtin.text
    widen = await post(f"/manage/roles/{ids['Readers']}", name="Readers", permission="roles.write")
    assert widen.status_code == 303
    await make_role(runtime, "Strong", ["api_keys.delete"])
    ids = await _role_names_ids(runtime)
    above = await post(f"/manage/roles/{ids['Strong']}", name="Strong", permission="api_keys.read")
    assert above.status_code == 403
    assert (await post(f"/manage/roles/{ids['Strong']}/delete")).status_code == 403
    await make_user(runtime, "holder@example.com", "Readers")
    used = await post(f"/manage/roles/{ids['Readers']}/delete")
    assert used.status_code == 409 and "take it away" in used.text
    assert (
        await post(f"/manage/roles/{ids['builtin' if False else 'editor']}/delete")
    ).status_code == 403
    assert await _role_names(runtime) == [
        "Readers", "RoleMaker", "Strong", "admin", "editor", "member",
    ]  # fmt: skip


async def test_permissions_are_the_union_of_roles_and_follow_role_edits(
    app: AkenerApp, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, "owner@example.com", "admin", owner=True)
    await make_role(runtime, "Keys", ["api_keys.read"])
    await make_role(runtime, "Writers", ["api_keys.write"])
    await make_user(runtime, "kim@example.com", "Keys", "Writers")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as kim:
        kims = await sign_in(kim, "kim@example.com")
        page = await kim.get("/manage/api-keys")
        assert "Create API key</button>" in page.text and "data-open-dialog" in page.text
        made = await kim.post("/manage/api-keys", data={"csrf_token": kims, "name": "Kim's"})
        assert made.status_code == 200
        csrf = await sign_in(client, "owner@example.com")
        ids = await _role_names_ids(runtime)
        edit = await client.post(
            f"/manage/roles/{ids['Keys']}",
            data={"csrf_token": csrf, "name": "Keys", "permission": "audit.read"},
        )
        assert edit.status_code == 303
        assert (await kim.get("/manage/api-keys")).status_code == 403
