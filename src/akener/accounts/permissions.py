"""akener's own permissions and the Principal every service call is made on behalf of."""

from __future__ import annotations

import difflib
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
WEBHOOKS_READ = "webhooks.read"
WEBHOOKS_WRITE = "webhooks.write"
METRICS_READ = "metrics.read"

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
    WEBHOOKS_READ,
    WEBHOOKS_WRITE,
    METRICS_READ,
)

# akener's own namespaces: a scope whose part before the first "." is one of these belongs to
# akener and must be one of ALL_PERMISSIONS; anything else (``incidents.write``) is an
# operator-defined scope that only the operator's own API gives a meaning to. A fixed list
# (docs/security.md "Reserved names"): a namespace is reserved before any feature uses it, and a
# migration that reserves a new one suspends the names keys and roles already held in it.
RESERVED_NAMESPACES: tuple[str, ...] = (
    "api_keys",
    "audit",
    "users",
    "roles",
    "webhooks",
    "metrics",
)
AKENER_NAMESPACES = frozenset(RESERVED_NAMESPACES)

# Held by the built-in admin role: the right to grant any operator-defined scope. It can never be
# a key scope (key scopes may not start with "*"), so it never leaves the accounts system.
ALL_OPERATOR_SCOPES = "*"


ADMIN_ROLE = "admin"
EDITOR_ROLE = "editor"
MEMBER_ROLE = "member"

# The built-in roles, defined here (not in the database) so a permission added in a later version
# reaches them without a data migration. DESIGN.md section 6.
BUILTIN_ROLES: dict[str, frozenset[str]] = {
    ADMIN_ROLE: frozenset(ALL_PERMISSIONS) | {ALL_OPERATOR_SCOPES},
    EDITOR_ROLE: frozenset(ALL_PERMISSIONS) - {API_KEYS_DELETE, USERS_WRITE, ROLES_WRITE},
    MEMBER_ROLE: frozenset(p for p in ALL_PERMISSIONS if p.endswith(".read")),
}
BUILTIN_DESCRIPTIONS = {
    ADMIN_ROLE: "Everything, including deleting keys and managing users and roles.",
    EDITOR_ROLE: "Everything except deleting keys and managing users and roles.",
    MEMBER_ROLE: "Read-only: sees keys, users and roles, changes nothing.",
}


def is_akener_scope(scope: str) -> bool:
    """True for scopes in akener's own namespaces (real permissions or not)."""
    return scope.split(".", 1)[0] in AKENER_NAMESPACES


def unknown_scope_message(scope: str) -> str:
    """Why ``scope`` is refused, with the nearest real permission when one is close."""
    close = difflib.get_close_matches(scope, ALL_PERMISSIONS, n=1, cutoff=0.6)
    if close:
        return f"unknown scope {scope}; did you mean {close[0]}?"
    return (
        f"unknown scope {scope}: names in akener's own namespaces"
        f" ({', '.join(RESERVED_NAMESPACES)}) must be akener permissions"
    )


def check_reserved(scope: str) -> None:
    """Raise ValueError for a name in akener's namespaces that is not a real permission."""
    if is_akener_scope(scope) and scope not in ALL_PERMISSIONS:
        raise ValueError(unknown_scope_message(scope))


def describe_scope(scope: str) -> str:
    """How a scope is written in messages (the wildcard spelled out)."""
    return "every operator-defined scope" if scope == ALL_OPERATOR_SCOPES else scope


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

    def missing_grants(self, scopes: Iterable[str]) -> list[str]:
        """The scopes in ``scopes`` this principal could not hand out, sorted."""
        if self.is_trusted:
            return []
        missing = set(scopes) - self.permissions
        if ALL_OPERATOR_SCOPES in self.permissions:
            missing = {s for s in missing if is_akener_scope(s) or s == ALL_OPERATOR_SCOPES}
        return sorted(missing)

    def require_can_grant(self, scopes: Iterable[str]) -> None:
        """Nobody hands out a permission they do not hold themselves."""
        missing = self.missing_grants(scopes)
        if missing:
            raise PermissionDenied(
                "you cannot grant scopes you do not hold: "
                + ", ".join(describe_scope(s) for s in missing)
            )


CLI_PRINCIPAL = Principal(kind="cli", id="cli", permissions=frozenset(ALL_PERMISSIONS))
