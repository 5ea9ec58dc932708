"""Dashboard sign-in: throttled password checks and server-side sessions.

The session cookie holds a random token; the table holds only its SHA-256 digest (a 256-bit
random token needs no slow hash), so a copy of the database signs nobody in. Signing out deletes
the row; deactivating a user deletes all of theirs.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts import passwords
from akener.accounts.models import User, WebSession
from akener.accounts.permissions import Principal
from akener.accounts.repository import SessionRepository, UserRepository
from akener.accounts.schemas import clean_email
from akener.audit.service import record_event
from akener.db.base import utcnow
from akener.db.engine import begin_write
from akener.errors import AuthenticationFailed, RateLimited

TOKEN_BYTES = 32
BAD_CREDENTIALS = "Wrong email or password."


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """How long sessions last and how many failed sign-ins are tolerated."""

    session_lifetime: timedelta = timedelta(hours=12)
    max_failures_per_account: int = 5
    max_failures_per_address: int = 20
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session: the row, its user, and the user acting as a Principal."""

    web_session: WebSession
    user: User
    client: str | None = None  # the browser's address, for the audit log

    @property
    def principal(self) -> Principal:
        """The user as services see them: their roles' permissions, nothing else."""
        return Principal(
            kind="user", id=self.user.id, permissions=self.user.permissions, client=self.client
        )

    @property
    def csrf_token(self) -> str:
        """The token every state-changing form of this session must carry."""
        return self.web_session.csrf_token


def token_digest(token: str) -> str:
    """What the sessions table stores in place of the cookie's token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def _check_throttle(
    repo: SessionRepository, policy: LoginPolicy, email: str, address: str, now: datetime
) -> None:
    since = now - policy.lockout
    by_account, by_address = await repo.failures_since(email=email, address=address, since=since)
    if (
        by_account < policy.max_failures_per_account
        and by_address < policy.max_failures_per_address
    ):
        return
    oldest = await repo.oldest_failure_since(email=email, address=address, since=since) or now
    minutes = max(1, math.ceil((oldest + policy.lockout - now).total_seconds() / 60))
    raise RateLimited(
        "Too many failed sign-in attempts. Sign-in is locked for this account or address;"
        f" try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )


async def log_in(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    address: str,
    policy: LoginPolicy,
) -> tuple[SignedIn, str]:
    """Check the password (throttled) and open a session; returns it and the cookie token.

    ``session`` must be in a writing transaction. The attempt is first reserved: under a lock on
    the account and the address, the recent failures are counted and the attempt is written as
    one, then committed. Only then is the password hashed, outside any transaction, so however
    many attempts arrive at once no more passwords are checked than the limit allows, and the
    slow hash never holds the SQLite write lock (nor a PostgreSQL lock). A good password removes
    the reservation. Failures are recorded in ``session``: the caller commits them even when this
    raises.
    """
    repo = SessionRepository(session)
    now = utcnow()
    try:
        email = clean_email(email)
    except ValueError:
        email = email.strip().lower()[:254]
    address = address[:64]
    await repo.lock_attempts(email, address)
    await _check_throttle(repo, policy, email, address, now)
    await repo.add_failure(email, address, now)  # the reservation, counted until it succeeds
    user = await UserRepository(session).get_by_email(email)
    stored = user.password_hash if user else None
    await session.commit()
    ok = await passwords.verify_password(stored, password)
    rehashed = (
        await passwords.hash_password(password)
        if ok and stored and passwords.needs_rehash(stored)
        else None
    )
    await begin_write(session)
    if user is not None:
        user = await UserRepository(session).get_by_id(user.id, fresh=True)
    if user is None or not ok or not user.is_active or user.password_hash != stored:
        # The attempted address is kept (it is what an investigation needs); never the password.
        await record_event(
            session,
            "anonymous",
            "login.failed",
            target_type="user",
            target_id=user.id if user else None,
            target_name=email,
            client=address,
        )
        raise AuthenticationFailed(BAD_CREDENTIALS)
    await repo.clear_failures(email)
    await repo.delete_failures_before(now - policy.lockout)
    await repo.delete_expired(now)
    if rehashed is not None:
        user.password_hash = rehashed
    user.last_login_at = now
    await record_event(
        session,
        f"user:{user.id}",
        "login.succeeded",
        target_type="user",
        target_id=user.id,
        target_name=user.email,
        client=address,
    )
    return await open_session(session, user, policy)


async def open_session(
    session: AsyncSession, user: User, policy: LoginPolicy
) -> tuple[SignedIn, str]:
    """A new session for ``user``; returns it and the token for the cookie."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = WebSession(
        token_digest=token_digest(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(TOKEN_BYTES),
        expires_at=utcnow() + policy.session_lifetime,
    )
    await SessionRepository(session).add(row)
    return SignedIn(row, user), token


async def resolve_session(session: AsyncSession, token: str | None) -> SignedIn | None:
    """The live session behind a cookie token, or None (unknown, expired, user inactive)."""
    if not token or len(token) > 128:
        return None
    row = await SessionRepository(session).get_live(token_digest(token), utcnow())
    if row is None:
        return None
    user = await UserRepository(session).get_by_id(row.user_id)
    if user is None or not user.is_active:
        return None
    return SignedIn(row, user)


async def log_out(session: AsyncSession, token: str | None) -> None:
    """End the session behind ``token`` (nothing happens for an unknown token)."""
    if token and len(token) <= 128:
        await SessionRepository(session).delete_by_digest(token_digest(token))


SETUP_LINK_LIFETIME = timedelta(hours=24)


def _setup_mac(secret: bytes, expires: int) -> str:
    message = b"akener/first-run-setup/" + str(expires).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def setup_token(secret: bytes, now: datetime | None = None) -> str:
    """The token of a first-run setup link, valid for 24 hours: its expiry and an HMAC of it
    under the server secret.

    Every process agrees on it without storing anything, and only someone who holds the secret
    (the operator) can make one.
    """
    expires = int(((now or utcnow()) + SETUP_LINK_LIFETIME).timestamp())
    return f"{expires}.{_setup_mac(secret, expires)}"


def setup_token_valid(secret: bytes, token: str, now: datetime | None = None) -> bool:
    """True for a token made with ``secret`` that has not expired yet."""
    expires_text, _, mac = token.partition(".")
    if not secret or not (expires_text.isascii() and expires_text.isdigit()) or len(mac) != 32:
        return False
    expires = int(expires_text)
    moment = (now or utcnow()).timestamp()
    if not moment < expires <= moment + SETUP_LINK_LIFETIME.total_seconds() + 60:
        return False
    return hmac.compare_digest(mac.encode(), _setup_mac(secret, expires).encode())
