"""Manage → Roles: built-in roles to read, custom roles to create, edit and delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from akener.accounts import service as accounts
from akener.accounts.models import Role
from akener.accounts.permissions import ALL_OPERATOR_SCOPES, ALL_PERMISSIONS, Principal
from akener.accounts.schemas import clean_description, clean_role_name, clean_role_permissions
from akener.api.deps import AutoCommitRoute
from akener.errors import AkenerError
from akener.web.csrf import check_csrf
from akener.web.deps import CurrentUser, DbSession, flash, see_other
from akener.web.forms import clean, clean_list, form_of, text, texts, words
from akener.web.templating import render

router = APIRouter(
    prefix="/manage/roles", route_class=AutoCommitRoute, dependencies=[Depends(check_csrf)]
)
LIST_URL = "/manage/roles"


def _values(role: Role | None = None) -> dict[str, Any]:
    if role is None:
        return {"name": "", "description": "", "permissions": [], "other": ""}
    # Suspended names are left out: saving the form must not grant them again unasked.
    held = [p for p in role.permissions if p not in (role.suspended_permissions or [])]
    mine = [p for p in held if p in ALL_PERMISSIONS]
    other = " ".join(p for p in held if p not in ALL_PERMISSIONS)
    return {"name": role.name, "description": role.description, "permissions": mine, "other": other}


def _form_context(actor: Principal, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "all_permissions": ALL_PERMISSIONS,
        "holds": {p for p in ALL_PERMISSIONS if actor.has(p)},
        "any_scope": ALL_OPERATOR_SCOPES in actor.permissions,
        "values": values,
    }


def _parse(form_values: dict[str, Any]) -> tuple[str, str, list[str]]:
    name = clean("name", clean_role_name, form_values["name"])
    description = clean("description", clean_description, form_values["description"])
    permissions = clean_list(
        "permissions",
        clean_role_permissions,
        [*form_values["permissions"], *words(form_values["other"])],
    )
    return name, description, permissions


async def _form_values(request: Request) -> dict[str, Any]:
    form = await form_of(request)
    return {
        "name": text(form, "name"),
        "description": text(form, "description"),
        "permissions": texts(form, "permission"),
        "other": text(form, "other_scopes"),
    }


@router.get("")
async def list_page(
    request: Request,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Every role, what it grants and how many hold it; a form to add a custom role."""
    return await _render_list(request, session, me.principal, _values())


async def _render_list(
    request: Request,
    session: AsyncSession,
    actor: Principal,
    values: dict[str, Any],
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    roles = await accounts.list_roles(session, actor)
    context = {"roles": roles, **_form_context(actor, values), **(extra or {})}
    return render(request, "roles/list.html", context, status_code=status_code)


def _error(exc: AkenerError) -> tuple[dict[str, Any], int]:
    status = {"FORBIDDEN": 403, "CONFLICT": 409}.get(exc.code, 422)
    return {"error": exc.message[:1].upper() + exc.message[1:]}, status


@router.post("")
async def create(
    request: Request,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Add a custom role holding only what the creator holds."""
    values = await _form_values(request)
    try:
        name, description, permissions = _parse(values)
        role = await accounts.create_role(
            session, me.principal, name=name, description=description, permissions=permissions
        )
    except AkenerError as exc:
        extra, status = _error(exc)
        return await _render_list(request, session, me.principal, values, extra, status)
    flash(request, f"Created the role “{role.name}”.")
    return see_other(LIST_URL)


@router.get("/{role_id}")
async def edit_page(
    request: Request,
    role_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """One role; custom roles can be edited here."""
    role = await accounts.get_role(session, me.principal, role_id)
    context = {"role": role, **_form_context(me.principal, _values(role))}
    return render(request, "roles/edit.html", context)


@router.post("/{role_id}")
async def update(
    request: Request,
    role_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Save a custom role's name, description and permissions."""
    values = await _form_values(request)
    role = await accounts.get_role(session, me.principal, role_id)
    try:
        name, description, permissions = _parse(values)
        role = await accounts.update_role(
            session,
            me.principal,
            role_id,
            name=name,
            description=description,
            permissions=permissions,
        )
    except AkenerError as exc:
        extra, status = _error(exc)
        context = {"role": role, **_form_context(me.principal, values), **extra}
        return render(request, "roles/edit.html", context, status_code=status)
    flash(request, f"Saved the role “{role.name}”.")
    return see_other(LIST_URL)


@router.get("/{role_id}/delete")
async def confirm_delete(
    request: Request,
    role_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """The confirmation step as a page."""
    role = await accounts.get_role(session, me.principal, role_id)
    context = {
        "title": f"Delete the role “{role.name}”?",
        "message": "This cannot be undone. Only roles nobody holds can be deleted.",
        "action": f"{LIST_URL}/{role.id}/delete",
        "button": "Delete role",
        "cancel": LIST_URL,
    }
    return render(request, "confirm.html", context)


@router.post("/{role_id}/delete")
async def delete(
    request: Request,
    role_id: str,
    me: CurrentUser,
    session: DbSession,
) -> Response:
    """Delete a custom role nobody holds."""
    role = await accounts.delete_role(session, me.principal, role_id)
    flash(request, f"Deleted the role “{role.name}”.")
    return see_other(LIST_URL)
