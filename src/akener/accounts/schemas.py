"""Shapes and rules for account input: emails, display names, role names, role permissions."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from akener.accounts.permissions import check_reserved
from akener.keys.schemas import SCOPE_RE

EMAIL_MAX = 254
DISPLAY_NAME_MAX = 100
ROLE_NAME_MAX = 50
ROLE_DESCRIPTION_MAX = 200
MAX_ROLE_PERMISSIONS = 64
# Deliberately loose: one @, something on each side, a dot in the domain, no spaces. The only
# real check of an address is whether its owner can sign in with it.
_EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_ROLE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,49}")


def _no_invisible(value: str, what: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in value):
        raise ValueError(f"{what} must not contain control or invisible characters")
    return value


def clean_email(value: str) -> str:
    """Trimmed and lower-cased; must look like an address."""
    value = value.strip().lower()
    if not value:
        raise ValueError("email must not be empty")
    if len(value) > EMAIL_MAX or not _EMAIL_RE.fullmatch(value):
        raise ValueError("enter a valid email address, like ada@example.com")
    return value


def clean_display_name(value: str) -> str:
    """Trimmed, 1-100 characters, printable."""
    value = value.strip()
    if not value:
        raise ValueError("name must not be empty")
    if len(value) > DISPLAY_NAME_MAX:
        raise ValueError(f"name must be at most {DISPLAY_NAME_MAX} characters")
    return _no_invisible(value, "name")


def clean_role_name(value: str) -> str:
    """Trimmed; letters, digits, spaces, _ . - ; at most 50 characters."""
    value = value.strip()
    if not value:
        raise ValueError("role name must not be empty")
    if len(value) > ROLE_NAME_MAX:
        raise ValueError(f"role name must be at most {ROLE_NAME_MAX} characters")
    if not _ROLE_NAME_RE.fullmatch(value):
        raise ValueError("role name may use letters, digits, spaces and _ . - only")
    return value


def clean_description(value: str) -> str:
    """Trimmed, at most 200 printable characters (may be empty)."""
    value = value.strip()
    if len(value) > ROLE_DESCRIPTION_MAX:
        raise ValueError(f"description must be at most {ROLE_DESCRIPTION_MAX} characters")
    return _no_invisible(value, "description")


def clean_role_permissions(values: list[str]) -> list[str]:
    """akener permissions by their exact name, or operator-defined scopes; order kept."""
    if len(values) > MAX_ROLE_PERMISSIONS:
        raise ValueError(f"at most {MAX_ROLE_PERMISSIONS} permissions and scopes")
    seen: dict[str, None] = {}
    for value in values:
        if not SCOPE_RE.fullmatch(value):
            raise ValueError(
                f"invalid scope {value[:40]!r}: use letters, digits and _ . : - / *"
                " (at most 100 characters)"
            )
        check_reserved(value)
        seen[value] = None
    return list(seen)


Email = Annotated[str, Field(max_length=10 * EMAIL_MAX), AfterValidator(clean_email)]
DisplayName = Annotated[
    str, Field(max_length=10 * DISPLAY_NAME_MAX), AfterValidator(clean_display_name)
]
RoleName = Annotated[str, Field(max_length=10 * ROLE_NAME_MAX), AfterValidator(clean_role_name)]
Description = Annotated[
    str, Field(max_length=10 * ROLE_DESCRIPTION_MAX), AfterValidator(clean_description)
]
RolePermissions = Annotated[list[str], AfterValidator(clean_role_permissions)]


class UserCreate(BaseModel):
    """A new user: who, how they are shown, which roles (by name)."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    display_name: DisplayName
    roles: list[str] = Field(default_factory=list, max_length=50)


class RoleWrite(BaseModel):
    """A custom role's name, description and permissions (create and edit)."""

    model_config = ConfigDict(extra="forbid")

    name: RoleName
    description: Description = ""
    permissions: RolePermissions = Field(default_factory=list)


def first_error(exc: Exception) -> tuple[str | None, str]:
    """The field and message of a pydantic ValidationError's first error, for one-line messages."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return None, str(exc)
    error = exc.errors()[0]
    field = ".".join(str(p) for p in error.get("loc", ()) if not isinstance(p, int)) or None
    return field, str(error.get("msg", "invalid value")).removeprefix("Value error, ")
