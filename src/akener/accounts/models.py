"""Tables of the accounts concern: users, roles, their link, dashboard sessions, login failures."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from akener.accounts.permissions import BUILTIN_ROLES
from akener.db.base import Base, UTCDateTime, utcnow


def new_id() -> str:
    """An opaque random identifier."""
    return uuid.uuid4().hex


user_roles = Table(
    "user_roles",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    # RESTRICT: a role still assigned to someone cannot disappear under them.
    Column("role_id", ForeignKey("roles.id", ondelete="RESTRICT"), primary_key=True),
)


class Role(Base):
    """A named set of permissions (and operator-defined scopes); built-in roles are read-only."""

    __tablename__ = "roles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    # For built-in roles this column is informative only: the code's definition is authoritative.
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Names in a namespace an upgrade reserved after the role got them: without effect until the
    # role is saved again by someone who holds them (migration 0007, docs/security.md).
    suspended_permissions: Mapped[list[str]] = mapped_column(
        JSON, default=list, server_default="[]"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def granted(self) -> frozenset[str]:
        """The permissions and scopes this role gives its holders."""
        if self.builtin and self.name in BUILTIN_ROLES:
            return BUILTIN_ROLES[self.name]
        return frozenset(self.permissions) - frozenset(self.suspended_permissions or ())


class User(Base):
    """A person who signs in to the dashboard."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # True for the owner, NULL for everyone else: the unique constraint then allows one owner
    # only, even when two first-run setups race (NULLs never collide on SQLite or PostgreSQL).
    owner_flag: Mapped[bool | None] = mapped_column(Boolean, unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    roles: Mapped[list[Role]] = relationship(
        secondary=user_roles, lazy="selectin", order_by=Role.name
    )

    @property
    def is_owner(self) -> bool:
        """The first user: cannot be demoted, deactivated or deleted by anyone else."""
        return bool(self.owner_flag)

    @property
    def permissions(self) -> frozenset[str]:
        """The union of the user's roles' permissions."""
        granted: set[str] = set()
        for role in self.roles:
            granted |= role.granted
        return frozenset(granted)


class WebSession(Base):
    """A signed-in dashboard session; the cookie holds a token, this row only its digest."""

    __tablename__ = "web_sessions"
    __table_args__ = (
        Index("ix_web_sessions_user_id", "user_id"),
        Index("ix_web_sessions_expires_at", "expires_at"),  # retention prunes ended sessions
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoginFailure(Base):
    """One failed sign-in, kept for a while to throttle guessing per account and per address."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_email_at", "email", "at"),
        Index("ix_login_failures_address_at", "address", "at"),
        Index("ix_login_failures_at", "at"),  # retention prunes by age alone
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
