"""Account changes and sign-ins are written to the audit log with the change itself."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from akener.accounts import service as accounts
from akener.accounts.permissions import Principal
from akener.accounts.sessions import setup_token
from akener.audit.models import AuditEvent
from akener.errors import PermissionDenied
from akener.runtime import Runtime
from tests.conftest import TEST_SECRET
from tests.factories import PASSWORD, csrf_of, make_user


async def audit_rows(runtime: Runtime) -> list[AuditEvent]:
    async with runtime.sessionmaker() as session:
        return list((await session.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars())


async def test_user_and_role_changes_are_recorded(runtime: Runtime) -> None:
    admin = await make_user(runtime, "admin@example.com", "admin", owner=True)
    actor = Principal(kind="user", id=admin.id, permissions=admin.permissions, client="10.1.2.3")
    async with runtime.sessionmaker() as session:
        role = await accounts.create_role(
            session, actor, name="auditors", description="", permissions=["audit.read"]
        )
        user = await accounts.create_user(
            session,
            actor,
            email="eve@example.com",
            display_name="Eve",
            password=PASSWORD,
            roles=["member"],
        )
        await accounts.set_user_roles(session, actor, user.id, [role.id])
        await accounts.set_user_active(session, actor, user.id, active=False)
        await accounts.update_role(
            session,
            actor,
            role.id,
            name="auditors",
            description="read the log",
            permissions=["audit.read", "api_keys.read"],
        )
        await accounts.delete_user(session, actor, user.id)
        await accounts.delete_role(session, actor, role.id)
        await session.commit()

    rows = await audit_rows(runtime)
    assert [r.action for r in rows] == [
        "role.created",
        "user.created",
        "user.role_assigned",
        "user.role_removed",
        "user.deactivated",
        "role.changed",
        "user.deleted",
        "role.deleted",
    ]
    assert {r.actor for r in rows} == {f"user:{admin.id}"}
    assert {r.client for r in rows} == {"10.1.2.3"}
    assigned = next(r for r in rows if r.action == "user.role_assigned")
    assert assigned.changes == {"roles": {"before": ["member"], "after": ["auditors"]}}
    changed = next(r for r in rows if r.action == "role.changed")
    assert changed.changes is not None and set(changed.changes) == {"description", "permissions"}
    created = next(r for r in rows if r.action == "user.created")
    assert "argon2" not in repr(created.changes) and PASSWORD not in repr(created.changes)


async def test_a_refused_change_leaves_no_audit_row(runtime: Runtime) -> None:
    member = await make_user(runtime, "m@example.com", "member")
    actor = Principal(kind="user", id=member.id, permissions=member.permissions)
    async with runtime.sessionmaker() as session:
        with pytest.raises(PermissionDenied):
            await accounts.create_role(
                session, actor, name="x", description="", permissions=["audit.read"]
            )
        await session.commit()
    assert await audit_rows(runtime) == []


async def test_setup_and_sign_ins_are_recorded(client: httpx.AsyncClient, runtime: Runtime) -> None:
    token = setup_token(TEST_SECRET.encode())
    page = await client.get(f"/setup?token={token}")
    done = await client.post(
        "/setup",
        data={
            "csrf_token": csrf_of(page.text),
            "token": token,
            "email": "ada@example.com",
            "display_name": "Ada",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )
    assert done.status_code == 303
    await client.post(
        "/logout", data={"csrf_token": csrf_of((await client.get("/manage/api-keys")).text)}
    )
    login = await client.get("/login")
    wrong = {
        "email": "ada@example.com",
        "password": "wrong password!",
        "csrf_token": csrf_of(login.text),
    }
    assert (await client.post("/login", data=wrong)).status_code != 303
    right = {**wrong, "password": PASSWORD}
    assert (await client.post("/login", data=right)).status_code == 303

    rows = await audit_rows(runtime)
    actions = [r.action for r in rows]
    assert actions == ["setup.completed", "user.created", "login.failed", "login.succeeded"]
    failed = rows[2]
    assert failed.actor == "anonymous" and failed.target_name == "ada@example.com"
    assert failed.client == "127.0.0.1"
    assert "wrong password" not in repr([r.changes for r in rows])
