"""akener's own permissions and the Principal every service call is made on behalf of."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from akener.errors import PermissionDenied

API_KEYS_READ = "api_keys.read"
API_KEYS_WRITE = "api_keys.write"
API_KEYS_DELETE = "api_keys.delete"
API_KEYS_VERIFY = "api_keys.verify"
USERS_READ = "users.read"
USERS_WRITE = "users.write"
ROLES_READ = "roles.read"
ROLES_WRITE = "roles.write"
AUDIT_READ = "audit.read"

ALL_PERMISSIONS: tuple[str, ...] = (
    API_KEYS_READ,
    API_KEYS_WRITE,
    API_KEYS_DELETE,
    API_KEYS_VERIFY,
    USERS_READ,
    USERS_WRITE,
    ROLES_READ,
    ROLES_WRITE,
    AUDIT_READ,
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: a key, a user, or the operator at the CLI (trusted, may grant anything)."""

    kind: str  # "key" | "user" | "cli"
    id: str
    permissions: frozenset[str]
    client: str | None = None  # the caller's network address, for the audit log

    @property
    def actor(self) -> str:
        """How the principal is written in created_by and in the audit log."""
        return "cli" if self.kind == "cli" else f"{self.kind}:{self.id}"

    @property
    def is_trusted(self) -> bool:
        """The CLI runs with the operator's access to the database itself."""
        return self.kind == "cli"

    def has(self, permission: str) -> bool:
        """True when the principal holds ``permission``."""
        return self.is_trusted or permission in self.permissions

    def require(self, permission: str) -> None:
        """Raise PermissionDenied unless the principal holds ``permission``."""
        if not self.has(permission):
            raise PermissionDenied(f"this action needs the '{permission}' permission")

    def require_can_grant(self, scopes: Iterable[str]) -> None:
        """Nobody hands out a permission they do not hold themselves."""
        if self.is_trusted:
            return
        missing = sorted(set(scopes) - self.permissions)
        if missing:
            raise PermissionDenied("you cannot grant scopes you do not hold: " + ", ".join(missing))


CLI_PRINCIPAL = Principal(kind="cli", id="cli", permissions=frozenset(ALL_PERMISSIONS))
