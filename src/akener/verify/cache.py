"""The per-process key cache: digest → the few fields the checks read.

Two bounded LRU maps: known digests (ACTIVE and INACTIVE keys alike, so a switched-off key is
refused without the database too) and unknown digests (negative entries, so the same made-up key
sent again and again costs a dict lookup). Nothing here knows HTTP or SQL.

Correctness rests on two rules (docs/verification.md explains them):

* ``trusted`` is False whenever this process may have missed a change (its PostgreSQL listener
  is down, or it could not read SQLite's change counter). An untrusted cache answers nothing and
  stores nothing: every request goes to the database.
* ``generation`` grows on every invalidation. A database read stores its answer only if the
  generation it started under is still current, so a read that raced with a change can never
  put the old state back after the change was forgotten.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from datetime import datetime
from typing import Any, Final, Literal

DEFAULT_MAX_KEYS = 100_000
DEFAULT_MAX_UNKNOWN = 65_536


class Miss(enum.Enum):
    """The one value meaning "not in the cache, or the cache cannot be trusted now"."""

    MISS = "MISS"


MISS: Final = Miss.MISS  # "the cache cannot say": only the database can answer


class CachedKey:
    """What the checks need to know about one stored key (active or not)."""

    __slots__ = ("active", "api", "edge", "expires_at", "expiry", "id", "limits", "name", "scopes")

    def __init__(
        self,
        id: str,
        name: str,
        scopes: frozenset[str],
        active: bool,
        expires_at: float | None = None,
        limits: Any = None,
        expiry: datetime | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.scopes = scopes
        self.active = active
        # POSIX seconds; None = never. Room for the expiry feature; checked by the verifier.
        self.expires_at = expires_at
        # akener.verify.limiter.EntryLimits, or None for a key without any limit (the fast path).
        self.limits = limits
        # The same instant as ``expires_at``, exactly as stored (the verify API shows it).
        self.expiry = expiry
        # An edge (forward-auth) may memoise its rendering of this entry here, e.g. response
        # headers; it dies with the entry, so it can never outlive an invalidation.
        self.edge: Any = None
        # The same for the API's fast path (akener.api.fastpath): the rendered JSON of the key.
        self.api: Any = None


class KeyCache:
    """Bounded digest → CachedKey map with negative entries and invalidation by key id."""

    def __init__(
        self, max_keys: int = DEFAULT_MAX_KEYS, max_unknown: int = DEFAULT_MAX_UNKNOWN
    ) -> None:
        self.max_keys = max_keys
        self.max_unknown = max_unknown
        self._known: OrderedDict[str, CachedKey] = OrderedDict()
        self._unknown: OrderedDict[str, None] = OrderedDict()
        self._digest_by_id: dict[str, str] = {}
        self.generation = 0
        self.trusted = True
        # Lookups answered from the cache (entry or known-unknown), and those it could not
        # answer (a miss, or an untrusted cache); read by akener.metrics, never reset.
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._known) + len(self._unknown)

    @property
    def unknown_count(self) -> int:
        """How many negative entries are held (never more than ``max_unknown``)."""
        return len(self._unknown)

    def get(self, digest: str) -> CachedKey | Literal[Miss.MISS] | None:
        """The entry, None for a known-unknown digest, or MISS when the cache cannot say."""
        if not self.trusted:
            self.misses += 1
            return MISS
        entry = self._known.get(digest)
        if entry is not None:
            self._known.move_to_end(digest)
            self.hits += 1
            return entry
        if digest in self._unknown:
            self._unknown.move_to_end(digest)
            self.hits += 1
            return None
        self.misses += 1
        return MISS

    def put(self, digest: str, entry: CachedKey | None, generation: int) -> None:
        """Remember a database answer read under ``generation``, unless it may be stale."""
        if not self.trusted or generation != self.generation:
            return
        if entry is None:
            self._unknown[digest] = None
            if len(self._unknown) > self.max_unknown:
                self._unknown.popitem(last=False)
            return
        self._unknown.pop(digest, None)
        old_digest = self._digest_by_id.get(entry.id)
        if old_digest is not None and old_digest != digest:
            self._known.pop(old_digest, None)
        self._known[digest] = entry
        self._digest_by_id[entry.id] = digest
        if len(self._known) > self.max_keys:
            _, evicted = self._known.popitem(last=False)
            self._digest_by_id.pop(evicted.id, None)

    def forget(self, key_ids: frozenset[str]) -> None:
        """Drop what is known about ``key_ids`` (they changed or were deleted)."""
        self.generation += 1
        for key_id in key_ids:
            digest = self._digest_by_id.pop(key_id, None)
            if digest is not None:
                self._known.pop(digest, None)

    def clear(self) -> None:
        """Drop everything (a change of unknown extent)."""
        self.generation += 1
        self._known.clear()
        self._unknown.clear()
        self._digest_by_id.clear()

    def distrust(self) -> None:
        """Changes may be missed from now on: empty the cache and stop using it."""
        self.trusted = False
        self.clear()

    def trust(self) -> None:
        """Changes are seen again: start from an empty cache (whatever was missed is gone)."""
        self.clear()
        self.trusted = True
