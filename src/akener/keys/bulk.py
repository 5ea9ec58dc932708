"""Actions on many keys at once: each key goes through the one-key service, in one transaction.

So every key gets its own audit event and change event, and one refusal (a key wider than the
actor, a missing permission, an unknown id) raises before the commit: nothing is changed.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import API_KEYS_READ, Principal
from akener.errors import InvalidInput
from akener.keys import service
from akener.keys.models import ApiKey, KeyStatus
from akener.keys.repository import KeyRepository

MAX_KEYS = 100
ACTIONS = ("activate", "deactivate", "delete")


def _check(key_ids: list[str], action: str) -> list[str]:
    if action not in ACTIONS:
        raise InvalidInput("action must be activate, deactivate or delete", field="action")
    unique = list(dict.fromkeys(key_ids))
    if not unique:
        raise InvalidInput("select at least one key", field="key")
    if len(unique) > MAX_KEYS:
        raise InvalidInput(f"at most {MAX_KEYS} keys at once", field="key")
    return unique


async def apply(
    session: AsyncSession, actor: Principal, key_ids: list[str], action: str
) -> list[ApiKey]:
    """Activate, deactivate or delete every key in ``key_ids``, or none of them."""
    changed = []
    for key_id in _check(key_ids, action):
        if action == "delete":
            changed.append(await service.delete_key(session, actor, key_id))
        else:
            status = KeyStatus.ACTIVE if action == "activate" else KeyStatus.INACTIVE
            changed.append(await service.set_key_status(session, actor, key_id, status))
    return changed


async def selected(session: AsyncSession, actor: Principal, key_ids: list[str]) -> list[ApiKey]:
    """The existing keys among ``key_ids`` (what a confirmation names), by name."""
    actor.require(API_KEYS_READ)
    rows = await KeyRepository(session).get_by_ids(list(dict.fromkeys(key_ids))[:MAX_KEYS])
    return sorted(rows, key=lambda row: row.name)
