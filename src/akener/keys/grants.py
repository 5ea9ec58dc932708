"""Changing a key is granting it: the one rule every edge (API, dashboard) goes through.

A change that gives a key more power or a longer life — a new secret, switching it back on,
a later or no expiry, more scopes — is allowed only to an actor that could have created the
key: one that holds every scope the key holds (and every scope it adds; a suspended scope,
see migration 0007, counts as added when it is granted again). A key never lengthens
its own life or widens itself, and rotates itself only with no grace period, so a rotation
never leaves two live secrets behind. Taking power away (deactivating, an earlier expiry,
removing scopes, deleting) needs only the permission of the action. The CLI is the operator's
trusted bootstrap and passes (``Principal.is_trusted``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from akener.accounts.permissions import Principal, describe_scope
from akener.errors import PermissionDenied
from akener.keys.models import ApiKey


@dataclass(frozen=True, slots=True)
class Widening:
    """What a change would give a key; an empty Widening takes nothing from anyone."""

    rotate_grace: int | None = None  # seconds, when the change is a rotation
    reactivate: bool = False
    extend_expiry: bool = False  # cleared, or moved later
    added_scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def widens(self) -> bool:
        """True when the change gives the key anything."""
        return (
            self.rotate_grace is not None
            or self.reactivate
            or self.extend_expiry
            or bool(self.added_scopes)
        )


def extends_expiry(current: datetime | None, wanted: datetime | None) -> bool:
    """True when ``wanted`` lets the key live longer than ``current`` (None: never expires)."""
    if current is None:
        return False
    return wanted is None or wanted > current


def added_scopes(key: ApiKey, wanted: Iterable[str]) -> frozenset[str]:
    """The scopes ``wanted`` would grant: new ones and suspended ones granted again."""
    held = key.effective_scopes
    return frozenset(s for s in wanted if s not in held)


def is_self(actor: Principal, key: ApiKey) -> bool:
    """True when a key is acting on itself."""
    return actor.kind == "key" and actor.id == key.id


def may_widen(actor: Principal, key: ApiKey) -> bool:
    """True when ``actor`` may rotate, switch on or extend ``key`` (what pages show as enabled)."""
    return actor.is_trusted or (
        not is_self(actor, key) and not actor.missing_grants(key.effective_scopes)
    )


def require_may_change(actor: Principal, key: ApiKey, change: Widening) -> None:
    """Raise PermissionDenied unless ``actor`` may make ``change`` to ``key``."""
    if not change.widens or actor.is_trusted:
        return
    if is_self(actor, key):
        _require_self_change(change)
    missing = actor.missing_grants(key.effective_scopes | change.added_scopes)
    if missing:
        raise PermissionDenied(
            f"{_what(change)} needs every scope the key holds, and you lack: "
            + ", ".join(describe_scope(s) for s in missing)
        )


def _require_self_change(change: Widening) -> None:
    if change.added_scopes:
        raise PermissionDenied("a key cannot add scopes to itself")
    if change.extend_expiry:
        raise PermissionDenied("a key cannot clear or move back its own expiry")
    if change.reactivate:
        raise PermissionDenied("a key cannot switch itself back on")
    if change.rotate_grace:
        raise PermissionDenied(
            "a key may rotate itself only with grace_period_seconds 0"
            " (the old secret must stop working at once)"
        )


def _what(change: Widening) -> str:
    if change.rotate_grace is not None:
        return "rotating a key"
    if change.reactivate:
        return "switching a key back on"
    if change.extend_expiry:
        return "extending or clearing a key's expiry"
    return "adding scopes to a key"
