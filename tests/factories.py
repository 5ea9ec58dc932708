"""Small factories: make exactly the rows a test needs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from akener.accounts import passwords
from akener.accounts.models import Role, User
from akener.accounts.permissions import ALL_PERMISSIONS, CLI_PRINCIPAL
from akener.accounts.repository import RoleRepository
from akener.db.engine import begin_write
from akener.keys import service
from akener.keys.models import ApiKey, KeyStatus
from akener.runtime import Runtime


async def make_key(
    runtime: Runtime,
    name: str = "Test key",
    *,
    scopes: list[str] | tuple[str, ...] = ALL_PERMISSIONS,
    status: KeyStatus = KeyStatus.ACTIVE,
) -> tuple[ApiKey, str]:
    """A key created the way the CLI creates one; returns the row and its plaintext."""
    async with runtime.sessionmaker() as session:
        row, plaintext = await service.create_key(
            session, CLI_PRINCIPAL, name=name, scopes=list(scopes), peppers=runtime.peppers
        )
        if status is not KeyStatus.ACTIVE:
            row = await service.set_key_status(session, CLI_PRINCIPAL, row.id, status)
        await session.commit()
    return row, plaintext


def bearer(key: str) -> dict[str, str]:
    """The Authorization header for ``key``."""
    return {"Authorization": f"Bearer {key}"}


PASSWORD = "correct horse battery"
_HASHES: dict[str, str] = {}


async def make_user(
    runtime: Runtime,
    email: str,
    *roles: str,
    owner: bool = False,
    active: bool = True,
    password: str = PASSWORD,
) -> User:
    """A user with the named roles (built-in or custom); the password hash is computed once."""
    if password not in _HASHES:
        _HASHES[password] = await passwords.hash_password(password)
    async with runtime.sessionmaker() as session:
        # A write from the start: a read upgraded to a write fails on SQLite if the background
        # sender committed in between.
        await begin_write(session)
        found = await RoleRepository(session).get_by_names(list(roles))
        assert len(found) == len(roles), f"unknown role among {roles}"
        user = User(
            email=email,
            display_name=email.split("@")[0].title(),
            password_hash=_HASHES[password],
            owner_flag=True if owner else None,
            is_active=active,
            roles=found,
        )
        session.add(user)
        await session.commit()
    return user


async def make_role(runtime: Runtime, name: str, permissions: list[str]) -> Role:
    """A custom role."""
    async with runtime.sessionmaker() as session:
        role = Role(name=name, description="", builtin=False, permissions=permissions)
        session.add(role)
        await session.commit()
    return role


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the login form; returns the session's CSRF token."""
    page = await client.get("/login")
    response = await client.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 303, response.text
    return csrf_of((await client.get("/manage/api-keys")).text)


class FakeClock:
    """A clock that moves only when told to (give it to ``AkenerApp(settings, clock=…)``)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move time forward by ``timedelta(**delta)``."""
        self.now += timedelta(**delta)


# The one-time panel renders a new key as an input's value.
SECRET_RE = re.compile(r'(?:value="|>)(akener_[0-9a-f]{64})(?:"|<)')  # an input's or a textarea's


async def sign_in_owner(client: httpx.AsyncClient, runtime: Runtime) -> str:
    """Create the owner (admin) and sign in as them; returns the session's CSRF token."""
    await make_user(runtime, "owner@example.com", "admin", owner=True)
    return await sign_in(client, "owner@example.com")
