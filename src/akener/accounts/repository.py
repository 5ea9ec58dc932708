"""Statements on the accounts tables. Repositories may flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.models import LoginFailure, Role, User, WebSession, user_roles


class UserRepository:
    """Reads and writes users inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, user: User) -> User:
        """Insert a user and flush so constraint errors surface here."""
        self.session.add(user)
        await self.session.flush()
        return user

    async def count(self) -> int:
        """How many users exist."""
        return int(await self.session.scalar(select(func.count()).select_from(User)) or 0)

    async def get_by_id(self, user_id: str, *, fresh: bool = False) -> User | None:
        """The user with that id, or None; ``fresh`` reads the row again from the database."""
        if len(user_id) > 64 or "\x00" in user_id:  # PostgreSQL refuses NUL in text
            return None
        return await self.session.get(User, user_id, populate_existing=fresh)

    async def get_by_email(self, email: str) -> User | None:
        """The user with that (lower-cased) email, or None."""
        return await self.session.scalar(select(User).where(User.email == email))

    async def get_by_ids(self, user_ids: Sequence[str]) -> list[User]:
        """The users with these ids (unknown ids are simply absent)."""
        stmt = select(User).where(
            User.id.in_([i for i in user_ids if len(i) <= 64 and "\x00" not in i])
        )
        return list((await self.session.execute(stmt)).scalars())

    async def list_all(self) -> list[User]:
        """Every user, the owner first, then by email."""
        stmt = select(User).order_by(User.owner_flag.is_(None), User.email)
        return list((await self.session.execute(stmt)).scalars())

    async def delete(self, user: User) -> None:
        """Remove the user (their sessions and role links go with them)."""
        await self.session.delete(user)
        await self.session.flush()


class RoleRepository:
    """Reads and writes roles inside the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, role: Role) -> Role:
        """Insert a role and flush so constraint errors surface here."""
        self.session.add(role)
        await self.session.flush()
        return role

    async def get_by_id(self, role_id: str) -> Role | None:
        """The role with that id, or None."""
        if len(role_id) > 64 or "\x00" in role_id:  # PostgreSQL refuses NUL in text
            return None
        return await self.session.get(Role, role_id)

    async def get_by_names(self, names: Sequence[str]) -> list[Role]:
        """The roles with these names (case-insensitive); unknown names are simply absent."""
        lowered = [n.strip().lower() for n in names]
        stmt = select(Role).where(func.lower(Role.name).in_(lowered))
        return list((await self.session.execute(stmt)).scalars())

    async def get_by_ids(self, role_ids: Sequence[str]) -> list[Role]:
        """The roles with these ids."""
        stmt = select(Role).where(
            Role.id.in_([i for i in role_ids if len(i) <= 64 and "\x00" not in i])
        )
        return list((await self.session.execute(stmt)).scalars())

    async def list_all(self) -> list[Role]:
        """Built-in roles first, then custom roles by name."""
        stmt = select(Role).order_by(Role.builtin.desc(), func.lower(Role.name))
        return list((await self.session.execute(stmt)).scalars())

    async def usage(self) -> dict[str, int]:
        """How many users hold each role, by role id."""
        stmt = select(user_roles.c.role_id, func.count()).group_by(user_roles.c.role_id)
        return {role_id: int(n) for role_id, n in (await self.session.execute(stmt)).all()}

    async def delete(self, role: Role) -> None:
        """Remove the role."""
        await self.session.delete(role)
        await self.session.flush()


class SessionRepository:
    """Dashboard sessions and login failures."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, web_session: WebSession) -> WebSession:
        """Insert a session row."""
        self.session.add(web_session)
        await self.session.flush()
        return web_session

    async def get_live(self, token_digest: str, now: datetime) -> WebSession | None:
        """The unexpired session with that token digest, or None."""
        stmt = select(WebSession).where(
            WebSession.token_digest == token_digest, WebSession.expires_at > now
        )
        return await self.session.scalar(stmt)

    async def delete_by_digest(self, token_digest: str) -> None:
        """Remove one session."""
        await self.session.execute(
            delete(WebSession).where(WebSession.token_digest == token_digest)
        )

    async def delete_for_user(self, user_id: str) -> None:
        """Remove every session of a user."""
        await self.session.execute(delete(WebSession).where(WebSession.user_id == user_id))

    async def delete_expired(self, now: datetime) -> None:
        """Forget sessions past their end."""
        await self.session.execute(delete(WebSession).where(WebSession.expires_at <= now))

    async def lock_attempts(self, email: str, address: str) -> None:
        """Hold sign-in attempts at this account and from this address back until this
        transaction ends, so counting and reserving an attempt is atomic. On SQLite the write
        transaction (BEGIN IMMEDIATE) already serialises them; PostgreSQL takes advisory locks,
        always in the same order."""
        connection = await self.session.connection()
        if connection.dialect.name != "postgresql":
            return
        for name in sorted((f"akener-login-account:{email}", f"akener-login-address:{address}")):
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name}
            )

    async def add_failure(self, email: str, address: str, at: datetime) -> None:
        """Note one failed sign-in."""
        self.session.add(LoginFailure(email=email, address=address, at=at))
        await self.session.flush()

    async def failures_since(self, *, email: str, address: str, since: datetime) -> tuple[int, int]:
        """Failed sign-ins since ``since``: for this account, and from this address."""
        base = select(func.count()).select_from(LoginFailure).where(LoginFailure.at > since)
        by_email = await self.session.scalar(base.where(LoginFailure.email == email))
        by_address = await self.session.scalar(base.where(LoginFailure.address == address))
        return int(by_email or 0), int(by_address or 0)

    async def oldest_failure_since(
        self, *, email: str, address: str, since: datetime
    ) -> datetime | None:
        """The earliest failure in the window for this account or address."""
        stmt = select(func.min(LoginFailure.at)).where(
            LoginFailure.at > since,
            or_(LoginFailure.email == email, LoginFailure.address == address),
        )
        value = await self.session.scalar(stmt)
        return value if isinstance(value, datetime) else None

    async def clear_failures(self, email: str) -> None:
        """Forget an account's failures after it signs in."""
        await self.session.execute(delete(LoginFailure).where(LoginFailure.email == email))

    async def delete_failures_before(self, before: datetime) -> None:
        """Drop failures too old to matter."""
        await self.session.execute(delete(LoginFailure).where(LoginFailure.at <= before))
