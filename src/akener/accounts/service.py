"""User and role operations. Each checks the actor's permissions and keeps the account rules:

- nobody grants what they do not hold (assigning a role, creating or editing a role);
- nobody changes an account that holds permissions they lack;
- the owner cannot be demoted, deactivated or deleted by anyone else, and always keeps admin;
- nobody deactivates or deletes themselves (the last way in must not close by accident).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts import passwords
from akener.accounts.models import Role, User
from akener.accounts.permissions import (
    ADMIN_ROLE,
    ROLES_READ,
    ROLES_WRITE,
    USERS_READ,
    USERS_WRITE,
    Principal,
    describe_scope,
)
from akener.accounts.repository import RoleRepository, SessionRepository, UserRepository
from akener.audit.service import diff, record_event
from akener.errors import Conflict, InvalidInput, NotFound, PermissionDenied


def _user_fields(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "display_name": user.display_name,
        "roles": sorted(r.name for r in user.roles),
        "active": user.is_active,
    }


def _role_fields(role: Role) -> dict[str, Any]:
    return {
        "name": role.name,
        "description": role.description,
        "permissions": sorted(role.permissions),
        "suspended_permissions": sorted(role.suspended_permissions or []),
    }


async def _audit(
    session: AsyncSession,
    actor: Principal | str,
    action: str,
    target: User | Role,
    changes: dict[str, Any],
    client: str | None = None,
) -> None:
    is_user = isinstance(target, User)
    await record_event(
        session,
        actor,
        action,
        target_type="user" if is_user else "role",
        target_id=target.id,
        target_name=target.email if isinstance(target, User) else target.name,
        changes=changes,
        client=client,
    )


def _missing_text(missing: Iterable[str]) -> str:
    return ", ".join(describe_scope(s) for s in missing)


def _require_can_grant_roles(actor: Principal, roles: Iterable[Role]) -> None:
    for role in roles:
        missing = actor.missing_grants(role.granted)
        if missing:
            raise PermissionDenied(
                f"you cannot assign the role '{role.name}': it holds permissions you do not "
                f"({_missing_text(missing)})"
            )


def _require_can_manage(actor: Principal, target: User) -> None:
    if actor.is_trusted:
        return
    if target.is_owner and actor.id != target.id:
        raise PermissionDenied("the owner's account can only be changed by the owner")
    missing = actor.missing_grants(target.permissions)
    if missing:
        raise PermissionDenied(
            f"{target.email} holds permissions you do not ({_missing_text(missing)}),"
            " so you cannot change their account"
        )


async def count_users(session: AsyncSession) -> int:
    """How many users exist (zero means the first-run setup is open)."""
    return await UserRepository(session).count()


async def _insert_user(session: AsyncSession, user: User) -> User:
    try:
        async with session.begin_nested():
            await UserRepository(session).add(user)
    except IntegrityError as exc:
        if await UserRepository(session).get_by_email(user.email) is not None:
            raise Conflict(f"a user with the email {user.email} already exists") from exc
        raise Conflict("the owner account already exists") from exc
    return user


async def create_owner(
    session: AsyncSession,
    *,
    email: str,
    display_name: str,
    password: str,
    client: str | None = None,
) -> User:
    """The first-run setup: the first user, owner and admin. Refused once any user exists."""
    if await count_users(session):
        raise Conflict("the owner account already exists; sign in instead")
    passwords.check_strength(password)
    admin = await RoleRepository(session).get_by_names([ADMIN_ROLE])
    user = User(
        email=email,
        display_name=display_name,
        password_hash=await passwords.hash_password(password),
        owner_flag=True,
        roles=admin,
    )
    await _insert_user(session, user)
    changes = diff({}, _user_fields(user))
    await _audit(session, f"user:{user.id}", "setup.completed", user, changes, client)
    await _audit(session, f"user:{user.id}", "user.created", user, changes, client)
    return user


async def create_user(
    session: AsyncSession,
    actor: Principal,
    *,
    email: str,
    display_name: str,
    password: str,
    roles: Sequence[str],
) -> User:
    """A new user with roles given by name; the very first user becomes the owner."""
    actor.require(USERS_WRITE)
    found = await _roles_by_names(session, roles)
    _require_can_grant_roles(actor, found)
    passwords.check_strength(password)
    first = await count_users(session) == 0
    if first and not any(r.name == ADMIN_ROLE for r in found):
        raise InvalidInput(
            "the first user becomes the owner and needs the admin role (--role admin)",
            field="roles",
        )
    user = User(
        email=email,
        display_name=display_name,
        password_hash=await passwords.hash_password(password),
        owner_flag=True if first else None,
        roles=found,
    )
    await _insert_user(session, user)
    await _audit(session, actor, "user.created", user, diff({}, _user_fields(user)))
    return user


async def _roles_by_names(session: AsyncSession, names: Sequence[str]) -> list[Role]:
    found = await RoleRepository(session).get_by_names(names)
    known = {r.name.lower() for r in found}
    unknown = [n for n in names if n.strip().lower() not in known]
    if unknown:
        raise InvalidInput(f"no role named {unknown[0]!r}", field="roles")
    return found


async def list_users(session: AsyncSession, actor: Principal) -> list[User]:
    """Every user, the owner first."""
    actor.require(USERS_READ)
    return await UserRepository(session).list_all()


async def get_user(session: AsyncSession, actor: Principal, user_id: str) -> User:
    """One user by id."""
    actor.require(USERS_READ)
    return await _load_user(session, user_id)


async def _load_user(session: AsyncSession, user_id: str) -> User:
    user = await UserRepository(session).get_by_id(user_id)
    if user is None:
        raise NotFound("no user with that id")
    return user


async def set_user_roles(
    session: AsyncSession, actor: Principal, user_id: str, role_ids: Sequence[str]
) -> User:
    """Replace a user's roles; every role added must be one the actor could hold out."""
    actor.require(USERS_WRITE)
    user = await _load_user(session, user_id)
    _require_can_manage(actor, user)
    roles = await RoleRepository(session).get_by_ids(role_ids)
    if len(roles) != len(set(role_ids)):
        raise InvalidInput("one of the chosen roles does not exist", field="roles")
    current = {r.id for r in user.roles}
    _require_can_grant_roles(actor, [r for r in roles if r.id not in current])
    if user.is_owner and not any(r.name == ADMIN_ROLE and r.builtin for r in roles):
        raise PermissionDenied("the owner always keeps the admin role")
    before = {r.name for r in user.roles}
    user.roles = sorted(roles, key=lambda r: r.name)
    await session.flush()
    after = {r.name for r in user.roles}
    change = {"roles": {"before": sorted(before), "after": sorted(after)}}
    if after - before:
        await _audit(session, actor, "user.role_assigned", user, change)
    if before - after:
        await _audit(session, actor, "user.role_removed", user, change)
    return user


async def set_user_active(
    session: AsyncSession, actor: Principal, user_id: str, *, active: bool
) -> User:
    """Deactivate (signing them out everywhere) or reactivate a user."""
    actor.require(USERS_WRITE)
    user = await _load_user(session, user_id)
    if not actor.is_trusted and actor.id == user.id:
        raise PermissionDenied("you cannot deactivate or reactivate your own account")
    _require_can_manage(actor, user)
    was_active = user.is_active
    user.is_active = active
    if not active:
        await SessionRepository(session).delete_for_user(user.id)
    await session.flush()
    if was_active != active:
        action = "user.activated" if active else "user.deactivated"
        change = {"active": {"before": was_active, "after": active}}
        await _audit(session, actor, action, user, change)
    return user


async def delete_user(session: AsyncSession, actor: Principal, user_id: str) -> User:
    """Delete a user for good; keys they created stay (keys belong to the installation)."""
    actor.require(USERS_WRITE)
    user = await _load_user(session, user_id)
    if not actor.is_trusted and actor.id == user.id:
        raise PermissionDenied("you cannot delete your own account")
    if user.is_owner:
        raise PermissionDenied("the owner's account cannot be deleted")
    _require_can_manage(actor, user)
    fields = _user_fields(user)
    await UserRepository(session).delete(user)
    await _audit(session, actor, "user.deleted", user, diff(fields, {}))
    return user


async def list_roles(session: AsyncSession, actor: Principal) -> list[tuple[Role, int]]:
    """Every role with how many users hold it, built-in roles first."""
    actor.require(ROLES_READ)
    repo = RoleRepository(session)
    usage = await repo.usage()
    return [(role, usage.get(role.id, 0)) for role in await repo.list_all()]


async def get_role(session: AsyncSession, actor: Principal, role_id: str) -> Role:
    """One role by id."""
    actor.require(ROLES_READ)
    return await _load_role(session, role_id)


async def _load_role(session: AsyncSession, role_id: str) -> Role:
    role = await RoleRepository(session).get_by_id(role_id)
    if role is None:
        raise NotFound("no role with that id")
    return role


async def _require_free_name(session: AsyncSession, name: str, keep: Role | None = None) -> None:
    for other in await RoleRepository(session).get_by_names([name]):
        if other is not keep:
            raise Conflict(f"a role named {other.name!r} already exists")


async def create_role(
    session: AsyncSession,
    actor: Principal,
    *,
    name: str,
    description: str,
    permissions: Sequence[str],
) -> Role:
    """A custom role; it may hold only what the actor holds."""
    actor.require(ROLES_WRITE)
    actor.require_can_grant(permissions)
    await _require_free_name(session, name)
    role = Role(name=name, description=description, builtin=False, permissions=list(permissions))
    try:
        async with session.begin_nested():
            await RoleRepository(session).add(role)
    except IntegrityError as exc:
        raise Conflict(f"a role named {name!r} already exists") from exc
    await _audit(session, actor, "role.created", role, diff({}, _role_fields(role)))
    return role


def _require_editable(actor: Principal, role: Role) -> None:
    if role.builtin:
        raise PermissionDenied(f"the built-in role '{role.name}' cannot be changed")
    missing = actor.missing_grants(role.granted)
    if missing:
        raise PermissionDenied(
            f"the role '{role.name}' holds permissions you do not ({_missing_text(missing)})"
        )


async def update_role(
    session: AsyncSession,
    actor: Principal,
    role_id: str,
    *,
    name: str,
    description: str,
    permissions: Sequence[str],
) -> Role:
    """Rename a custom role and/or change its permissions (only to ones the actor holds)."""
    actor.require(ROLES_WRITE)
    role = await _load_role(session, role_id)
    _require_editable(actor, role)
    actor.require_can_grant(permissions)
    await _require_free_name(session, name, keep=role)
    before = _role_fields(role)
    role.name, role.description, role.permissions = name, description, list(permissions)
    role.suspended_permissions = []  # every name listed was just granted by someone holding it
    await session.flush()
    changes = diff(before, _role_fields(role))
    if changes:
        await _audit(session, actor, "role.changed", role, changes)
    return role


async def delete_role(session: AsyncSession, actor: Principal, role_id: str) -> Role:
    """Delete a custom role that nobody holds."""
    actor.require(ROLES_WRITE)
    role = await _load_role(session, role_id)
    _require_editable(actor, role)
    holders = (await RoleRepository(session).usage()).get(role.id, 0)
    if holders:
        raise Conflict(
            f"the role '{role.name}' is held by {holders} user{'s' if holders != 1 else ''};"
            " take it away from them first"
        )
    fields = _role_fields(role)
    await RoleRepository(session).delete(role)
    await _audit(session, actor, "role.deleted", role, diff(fields, {}))
    return role


def assignable(actor: Principal, roles: Iterable[Role]) -> set[str]:
    """Ids of the roles ``actor`` may hand out."""
    return {r.id for r in roles if not actor.missing_grants(r.granted)}
