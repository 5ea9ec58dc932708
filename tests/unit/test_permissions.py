"""Built-in roles and the granting rule, pure."""

from __future__ import annotations

import pytest

from akener.accounts.permissions import (
    ALL_OPERATOR_SCOPES,
    ALL_PERMISSIONS,
    BUILTIN_ROLES,
    CLI_PRINCIPAL,
    Principal,
)
from akener.errors import PermissionDenied


def user(*permissions: str) -> Principal:
    return Principal(kind="user", id="u1", permissions=frozenset(permissions))


def test_builtin_roles_follow_the_design() -> None:
    assert BUILTIN_ROLES["admin"] >= set(ALL_PERMISSIONS)
    assert BUILTIN_ROLES["editor"] == set(ALL_PERMISSIONS) - {
        "api_keys.delete",
        "users.write",
        "roles.write",
    }
    assert BUILTIN_ROLES["member"] == {p for p in ALL_PERMISSIONS if p.endswith(".read")}


def test_a_user_grants_only_what_they_hold() -> None:
    editor = user(*BUILTIN_ROLES["editor"])
    editor.require_can_grant(["api_keys.read", "api_keys.write"])
    with pytest.raises(PermissionDenied, match=r"api_keys\.delete"):
        editor.require_can_grant(["api_keys.read", "api_keys.delete"])
    with pytest.raises(PermissionDenied, match=r"incidents\.write"):
        editor.require_can_grant(["incidents.write"])
    user("api_keys.write", "incidents.write").require_can_grant(["incidents.write"])


def test_the_wildcard_covers_operator_scopes_only() -> None:
    admin = user(*BUILTIN_ROLES["admin"])
    assert admin.missing_grants(["incidents.write", "deploys:read", *ALL_PERMISSIONS]) == []
    assert admin.missing_grants(["api_keys.everything"]) == ["api_keys.everything"]
    almost = user(ALL_OPERATOR_SCOPES)
    assert almost.missing_grants(["api_keys.read", "x.y"]) == ["api_keys.read"]
    # Only holders of the wildcard can hand it on (e.g. make someone an admin).
    assert user(*ALL_PERMISSIONS).missing_grants([ALL_OPERATOR_SCOPES]) == [ALL_OPERATOR_SCOPES]
    with pytest.raises(PermissionDenied, match="every operator-defined scope"):
        user(*ALL_PERMISSIONS).require_can_grant(BUILTIN_ROLES["admin"])


def test_the_cli_is_trusted() -> None:
    assert CLI_PRINCIPAL.missing_grants(["anything.at.all", ALL_OPERATOR_SCOPES]) == []
    assert CLI_PRINCIPAL.actor == "cli" and user().actor == "user:u1"
