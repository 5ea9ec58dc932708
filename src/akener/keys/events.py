"""Key change events, emitted in the transaction that makes the change.

Every process that verifies keys must forget what it knew about a key the moment a change to it
commits. On PostgreSQL the change is a ``NOTIFY`` (delivered to every listener on commit, never
on rollback). SQLite has no such bus, so the change bumps a counter row in the same transaction
and every process compares it before trusting its cache (akener.verify.freshness). In every case
the committing process is told directly after commit, so its own next request already sees the
change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

CHANNEL = "akener_key_changes"
_PENDING = "akener.changed_keys"
_LISTENERS = "akener.key_listeners"

KeyChangeListener = Callable[[frozenset[str]], None]

# Committed with the change itself, so no process can see the change without the new number.
_BUMP_SEQ = text(
    "INSERT INTO key_change_seq (id, seq) VALUES (1, 1) "
    "ON CONFLICT (id) DO UPDATE SET seq = key_change_seq.seq + 1"
)


_KEY_ID_RE = re.compile(r"[0-9A-Za-z_-]{1,64}")
EVERY_KEY = None  # what read_change_payload answers when it cannot tell which keys changed


def read_change_payload(payload: str) -> frozenset[str] | None:
    """The key ids a NOTIFY payload names, from this version of akener or another one.

    Today's payload is a bare key id. A later version may send a JSON object; this one reads
    ``key_id`` / ``key_ids`` from it and ignores every other field and any ``kind`` it does not
    know, so a fleet in the middle of an upgrade keeps working (docs/operations.md). An object
    that names no key is about something else and changes nothing (an empty set). A payload this
    version cannot read at all answers None: the caller then forgets every cached key, which is
    always safe (the next requests read the database).
    """
    text_ = payload.strip()
    if _KEY_ID_RE.fullmatch(text_):
        return frozenset((text_,))
    try:
        data = json.loads(text_)
    except ValueError:
        return EVERY_KEY
    if not isinstance(data, dict):
        return EVERY_KEY
    found = set()
    one = data.get("key_id")
    if isinstance(one, str) and _KEY_ID_RE.fullmatch(one):
        found.add(one)
    many = data.get("key_ids")
    if isinstance(many, list):
        found |= {k for k in many if isinstance(k, str) and _KEY_ID_RE.fullmatch(k)}
    elif many is not None or (one is not None and not found):
        return EVERY_KEY  # it names keys in a shape this version does not know
    return frozenset(found)


async def record_key_change(session: AsyncSession, key_id: str) -> None:
    """Announce that ``key_id`` changed; delivered only if the transaction commits."""
    session.info.setdefault(_PENDING, set()).add(key_id)
    dialect = session.bind.dialect.name if session.bind is not None else ""
    if dialect == "postgresql":
        await session.execute(
            text("SELECT pg_notify(:channel, :key_id)"), {"channel": CHANNEL, "key_id": key_id}
        )
    elif dialect == "sqlite":
        await session.execute(_BUMP_SEQ)


def install_listeners(
    sessionmaker: async_sessionmaker[AsyncSession], listeners: Iterable[KeyChangeListener]
) -> None:
    """Call each listener after a commit of any session from ``sessionmaker`` that changed keys."""
    sessionmaker.configure(info={_LISTENERS: tuple(listeners)})


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    changed = session.info.pop(_PENDING, None)
    if changed:
        for listener in session.info.get(_LISTENERS, ()):
            listener(frozenset(changed))


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
