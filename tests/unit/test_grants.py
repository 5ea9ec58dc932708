"""The grant rule and the reserved names, as pure functions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from akener.accounts.permissions import (
    ALL_PERMISSIONS,
    BUILTIN_ROLES,
    CLI_PRINCIPAL,
    RESERVED_NAMESPACES,
    Principal,
    unknown_scope_message,
)
from akener.errors import PermissionDenied
from akener.keys import grants
from akener.keys.models import ApiKey
from akener.keys.schemas import KeyCreate, KeyUpdate, clean_scopes

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def key(*scopes: str, suspended: tuple[str, ...] = (), key_id: str = "k" * 32) -> ApiKey:
    return ApiKey(id=key_id, scopes=list(scopes), suspended_scopes=list(suspended), status="ACTIVE")


def actor(*permissions: str, kind: str = "user", actor_id: str = "u") -> Principal:
    return Principal(kind=kind, id=actor_id, permissions=frozenset(permissions))


def test_widening_needs_every_scope_of_the_key() -> None:
    target = key("api_keys.delete", "audit.read")
    writer = actor("api_keys.write")
    for change in (
        grants.Widening(rotate_grace=0),
        grants.Widening(reactivate=True),
        grants.Widening(extend_expiry=True),
        grants.Widening(added_scopes=frozenset({"api_keys.read"})),
    ):
        with pytest.raises(PermissionDenied, match=r"api_keys\.delete, .*audit\.read"):
            grants.require_may_change(writer, target, change)
        grants.require_may_change(
            actor("api_keys.delete", "audit.read", "api_keys.read"), target, change
        )
        grants.require_may_change(CLI_PRINCIPAL, target, change)
    grants.require_may_change(writer, target, grants.Widening())  # taking away needs no grant


def test_suspended_scopes_do_not_count_as_held_until_granted_again() -> None:
    target = key("metrics.read", "x.y", suspended=("metrics.read",))
    assert target.effective_scopes == {"x.y"}
    holder = actor("x.y")
    grants.require_may_change(holder, target, grants.Widening(rotate_grace=0))
    assert grants.added_scopes(target, ["metrics.read", "x.y"]) == {"metrics.read"}
    with pytest.raises(PermissionDenied, match=r"metrics\.read"):
        grants.require_may_change(
            holder, target, grants.Widening(added_scopes=frozenset({"metrics.read"}))
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (grants.Widening(added_scopes=frozenset({"a.b"})), "add scopes to itself"),
        (grants.Widening(extend_expiry=True), "own expiry"),
        (grants.Widening(reactivate=True), "switch itself back on"),
        (grants.Widening(rotate_grace=60), "grace_period_seconds 0"),
    ],
)
def test_a_key_never_widens_itself(change: grants.Widening, message: str) -> None:
    me = key("api_keys.write", "a.b")
    itself = actor(*ALL_PERMISSIONS, "a.b", kind="key", actor_id=me.id)
    with pytest.raises(PermissionDenied, match=message):
        grants.require_may_change(itself, me, change)
    grants.require_may_change(itself, me, grants.Widening(rotate_grace=0))
    assert not grants.may_widen(itself, me)


def test_extends_expiry() -> None:
    later = NOW + timedelta(days=1)
    assert grants.extends_expiry(NOW, None) and grants.extends_expiry(NOW, later)
    assert not grants.extends_expiry(later, NOW) and not grants.extends_expiry(None, NOW)
    assert not grants.extends_expiry(None, None) and not grants.extends_expiry(NOW, NOW)


def test_reserved_namespaces_are_fixed_and_hold_every_permission() -> None:
    assert RESERVED_NAMESPACES == ("api_keys", "audit", "users", "roles", "webhooks", "metrics")
    assert {p.split(".")[0] for p in ALL_PERMISSIONS} <= set(RESERVED_NAMESPACES)
    assert {"webhooks.read", "webhooks.write", "metrics.read"} <= BUILTIN_ROLES["admin"]
    assert {"webhooks.read", "webhooks.write", "metrics.read"} <= BUILTIN_ROLES["editor"]
    assert BUILTIN_ROLES["member"] >= {"webhooks.read", "metrics.read"}
    assert "webhooks.write" not in BUILTIN_ROLES["member"]


def test_unknown_names_get_a_suggestion() -> None:
    assert unknown_scope_message("api_keys.reed") == (
        "unknown scope api_keys.reed; did you mean api_keys.read?"
    )
    assert "did you mean" not in unknown_scope_message("audit.xyzzyplugh")
    with pytest.raises(ValueError, match=r"did you mean roles\.write"):
        clean_scopes(["roles.wrte"])


SAMPLES = [
    *ALL_PERMISSIONS,
    "incidents.write",
    "deploy:run",
    "api_keys",
    "api_keys.",
    "api_keys.reed",
    "api_keysx.read",
    "api_keys:read",
    "webhooks.anything",
    "metrics",
    "metrics.read.x",
    "Users.read",
    "*",
    "a" * 100,
    "a" * 101,
    "bad scope",
    "",
    "incidents.write\n",
    "api_keys.read\n",
    "api_keys\n",
]


@pytest.mark.parametrize("model", [KeyCreate, KeyUpdate])
def test_the_json_schema_accepts_exactly_what_the_server_accepts(model: type) -> None:
    items = model.model_json_schema()["properties"]["scopes"]
    items = next(v for v in items.get("anyOf", [items]) if v.get("type") == "array")
    pattern = re.compile(items["items"]["pattern"])
    assert items["maxItems"] == 64
    for sample in SAMPLES:
        try:
            clean_scopes([sample])
            accepted = True
        except ValueError:
            accepted = False
        schema_ok = bool(pattern.search(sample)) and len(sample) <= items["items"]["maxLength"]
        assert schema_ok == accepted, sample
