"""How the actors of audit events read to people: emails for users, names for keys.

Events store stable ids (``user:<id>``, ``key:<id>``, ``cli``, ``anonymous``, ``upgrade``);
names change and objects get deleted, so names are looked up when the log is shown: from the
live row, or else from the newest name the log itself recorded for that object.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import API_KEYS_READ, AUDIT_READ, USERS_READ, Principal
from akener.accounts.repository import UserRepository
from akener.audit.repository import AuditRepository
from akener.keys.repository import KeyRepository

FIXED = {
    "cli": "Command line (operator)",
    "anonymous": "Anonymous visitor",
    "upgrade": "akener upgrade (migration)",
}


def _ids(actors: Iterable[str], prefix: str) -> list[str]:
    return sorted({a.removeprefix(prefix) for a in actors if a.startswith(prefix)})


async def describe_actors(
    session: AsyncSession, viewer: Principal, actors: Iterable[str]
) -> dict[str, str]:
    """``{actor: readable name}`` for the actors ``viewer`` may put a name on.

    Users need ``users.read`` or ``audit.read``; keys ``api_keys.read`` or ``audit.read``;
    names of deleted objects come from the audit log, so they need ``audit.read``.
    """
    actors = set(actors)
    names = {a: FIXED[a] for a in actors if a in FIXED}
    log = AuditRepository(session) if viewer.has(AUDIT_READ) else None
    user_ids = _ids(actors, "user:")
    if user_ids and (viewer.has(USERS_READ) or log):
        found = {u.id: u.email for u in await UserRepository(session).get_by_ids(user_ids)}
        gone = await log.last_names("user", set(user_ids) - set(found)) if log else {}
        names.update({f"user:{i}": e for i, e in found.items()})
        names.update({f"user:{i}": f"{e} (deleted)" for i, e in gone.items()})
    key_ids = _ids(actors, "key:")
    if key_ids and (viewer.has(API_KEYS_READ) or log):
        found = {k.id: k.name for k in await KeyRepository(session).get_by_ids(key_ids)}
        gone = await log.last_names("key", set(key_ids) - set(found)) if log else {}
        names.update({f"key:{i}": f"key “{n}”" for i, n in found.items()})
        names.update({f"key:{i}": f"key “{n}” (deleted)" for i, n in gone.items()})
    return names


async def actor_from_input(session: AsyncSession, viewer: Principal, text: str) -> str:
    """An actor filter typed by a person: an email becomes ``user:<id>``; anything else stays.

    Needs ``audit.read`` (the caller is filtering the audit log).
    """
    viewer.require(AUDIT_READ)
    text = text.strip()
    if "@" not in text:
        return text
    email = text.lower()
    user = await UserRepository(session).get_by_email(email)
    if user is not None:
        return f"user:{user.id}"
    found = await AuditRepository(session).target_id_by_name("user", email)
    return f"user:{found}" if found else text
