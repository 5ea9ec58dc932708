"""Manage → Users: add people, give them roles, deactivate or delete them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from akener.accounts import service as accounts
from akener.accounts.permissions import USERS_READ, USERS_WRITE, Principal
from akener.accounts.schemas import clean_display_name, clean_email
from akener.api.deps import AutoCommitRoute
from akener.errors import AkenerError, InvalidInput
from akener.web.csrf import check_csrf
from akener.web.deps import CurrentUser, DbSession, flash, see_other
from akener.web.forms import clean, form_of, text, texts
from akener.web.templating import render

router = APIRouter(
    prefix="/manage/users", route_class=AutoCommitRoute, dependencies=[Depends(check_csrf)]
)
LIST_URL = "/manage/users"


async def _roles_context(session: AsyncSession, actor: Principal) -> dict[str, Any]:
    roles = [role for role, _ in await accounts.list_roles(session, actor)]
    return {"roles": roles, "assignable": accounts.assignable(actor, roles)}


@router.get("")
async def list_page(
    request: Request,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Every user with their roles and status, and a form to add one."""
    return await _render_list(request, session, me.principal)


async def _render_list(
    request: Request,
    session: AsyncSession,
    actor: Principal,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    users = await accounts.list_users(session, actor)
    context = {"users": users, "values": {}, **(extra or {})}
    if actor.has(USERS_WRITE) and actor.has("roles.read"):
        context.update(await _roles_context(session, actor))
    return render(request, "users/list.html", context, status_code=status_code)


@router.post("")
async def create(
    request: Request,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Add a user with a first password and roles."""
    form = await form_of(request)
    values: dict[str, Any] = {
        "email": text(form, "email"),
        "display_name": text(form, "display_name"),
        "roles": texts(form, "role"),
    }
    try:
        me.principal.require(USERS_WRITE)
        email = clean("email", clean_email, values["email"])
        name = clean("display_name", clean_display_name, values["display_name"])
        if text(form, "password") != text(form, "password_confirm"):
            raise InvalidInput("The two passwords do not match.", field="password_confirm")
        user = await accounts.create_user(
            session,
            me.principal,
            email=email,
            display_name=name,
            password=text(form, "password"),
            roles=values["roles"],
        )
    except AkenerError as exc:
        status = {"FORBIDDEN": 403, "CONFLICT": 409}.get(exc.code, 422)
        extra = {"values": values, "error": exc.message[:1].upper() + exc.message[1:]}
        return await _render_list(request, session, me.principal, extra, status)
    flash(request, f"Added {user.email}.")
    return see_other(LIST_URL)


@router.get("/{user_id}")
async def edit_page(
    request: Request,
    user_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """One user: roles, status, delete."""
    user = await accounts.get_user(session, me.principal, user_id)
    context: dict[str, Any] = {"user": user, "held": {r.id for r in user.roles}}
    if me.principal.has("roles.read"):
        context.update(await _roles_context(session, me.principal))
    else:
        context.update({"roles": user.roles, "assignable": set()})
    return render(request, "users/edit.html", context)


@router.post("/{user_id}/roles")
async def set_roles(
    request: Request,
    user_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Replace the user's roles."""
    form = await form_of(request)
    user = await accounts.set_user_roles(session, me.principal, user_id, texts(form, "role"))
    flash(request, f"Roles of {user.email} saved.")
    return see_other(f"{LIST_URL}/{user.id}")


@router.post("/{user_id}/status")
async def set_status(
    request: Request,
    user_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Deactivate (signing them out everywhere) or reactivate."""
    form = await form_of(request)
    active = text(form, "active") == "true"
    user = await accounts.set_user_active(session, me.principal, user_id, active=active)
    state = "active again" if active else "deactivated and signed out everywhere"
    flash(request, f"{user.email} is {state}.")
    return see_other(f"{LIST_URL}/{user.id}")


@router.get("/{user_id}/delete")
async def confirm_delete(
    request: Request,
    user_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """The confirmation step as a page."""
    me.principal.require(USERS_READ)
    user = await accounts.get_user(session, me.principal, user_id)
    context = {
        "title": f"Delete {user.email}?",
        "message": "The account is removed for good; keys it created keep working.",
        "action": f"{LIST_URL}/{user.id}/delete",
        "button": "Delete user",
        "cancel": f"{LIST_URL}/{user.id}",
    }
    return render(request, "confirm.html", context)


@router.post("/{user_id}/delete")
async def delete(
    request: Request,
    user_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Delete a user for good."""
    user = await accounts.delete_user(session, me.principal, user_id)
    flash(request, f"Deleted {user.email}.")
    return see_other(LIST_URL)
