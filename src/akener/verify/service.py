"""The verifier: key string in, key identity or a refusal out.

This is the hot path (DESIGN.md section 4; docs/verification.md). The format check runs before any
digest or database work; the digest under the current pepper keys the per-process cache; a miss
reads the database by digest (every pepper version) and fills the cache, positive or negative.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from akener.accounts.permissions import API_KEYS_VERIFY, Principal
from akener.db.errors import DATABASE_ERRORS, RateLimitedLog, describe
from akener.errors import AuthenticationFailed, RateLimited, ServiceUnavailable
from akener.keys import tokens
from akener.keys.models import ApiKey, KeyStatus
from akener.keys.peppers import Peppers
from akener.keys.repository import KeyRepository
from akener.verify.bearer import REJECTED_MESSAGE
from akener.verify.cache import MISS, CachedKey, KeyCache, Miss
from akener.verify.refusals import RefusalRecorder
from akener.verify.retire import DigestRetirer
from akener.verify.throttle import FailureThrottle, Network, client_address
from akener.verify.usage import UsageRecorder

log = logging.getLogger("akener.verify")


class Verdict(enum.StrEnum):
    """Why a key was accepted or refused (the verify API's ``code``)."""

    VALID = "VALID"
    NOT_FOUND = "NOT_FOUND"
    INACTIVE = "INACTIVE"
    EXPIRED = "EXPIRED"  # past its expiry, or a rotated-out secret past its grace period
    MALFORMED = "MALFORMED"
    INSUFFICIENT_SCOPE = "INSUFFICIENT_SCOPE"


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    """What a check needs to know about an accepted key."""

    id: str
    name: str
    scopes: frozenset[str]

    @classmethod
    def from_entry(cls, entry: CachedKey) -> VerifiedKey:
        """The identity held by a cache entry."""
        return cls(id=entry.id, name=entry.name, scopes=entry.scopes)

    def principal(self, client: str | None = None) -> Principal:
        """The key acting on akener's own API: its scopes are its permissions."""
        return Principal(kind="key", id=self.id, permissions=self.scopes, client=client)


def entry_from_row(row: ApiKey, digests: list[str]) -> CachedKey:
    """Copy the fields the checks read out of a row found by one of ``digests``.

    A row found by its previous digest is a rotated-out secret: valid only until its grace
    period ends (and never past the key's own expiry).
    """
    ends = [row.expires_at] if row.expires_at is not None else []
    if row.digest not in digests:
        ends.append(row.previous_valid_until or datetime.fromtimestamp(0, UTC))
    return CachedKey(
        id=row.id,
        name=row.name,
        scopes=row.effective_scopes,
        active=row.status == KeyStatus.ACTIVE.value,
        expires_at=min(ends).timestamp() if ends else None,
    )


def judge(entry: CachedKey | None, now: float) -> Verdict:
    """VALID, NOT_FOUND or INACTIVE for a looked-up key (scopes are the caller's business)."""
    if entry is None:
        return Verdict.NOT_FOUND
    if not entry.active:
        return Verdict.INACTIVE
    if entry.expires_at is not None and entry.expires_at <= now:
        return Verdict.EXPIRED
    return Verdict.VALID


class Verifier:
    """Decides whether a key string is an ACTIVE key of this installation."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        peppers: Peppers,
        *,
        cache: KeyCache | None = None,
        usage: UsageRecorder | None = None,
        fresh: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.time,
        throttle: FailureThrottle | None = None,
        retirer: DigestRetirer | None = None,
        proxies: Sequence[Network] = (),
        refusals: RefusalRecorder | None = None,
    ) -> None:
        self.refusals = refusals
        self._sessionmaker = sessionmaker
        self._peppers = peppers
        self._digest = tokens.digester(peppers.by_version[peppers.current])
        self.cache = cache if cache is not None else KeyCache()
        self.usage = usage
        # Asked before every cached answer; False means "the cache cannot be trusted now".
        self._fresh = fresh
        self._warn = RateLimitedLog(log)  # one line per 10 s, not one per refused request
        self.now = clock  # POSIX seconds; tests pass a clock they can move
        self.throttle = throttle
        self.retirer = retirer
        self.proxies = tuple(proxies)
        # digest -> (cache generation it started under, the database read): one read per digest.
        self._flights: dict[str, tuple[int, asyncio.Task[CachedKey | None]]] = {}
        self.reads = 0  # database reads made (tests count them)

    def client(self, peer: str | None, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        """The address a request comes from (``X-Forwarded-For`` only from a trusted proxy)."""
        if not self.proxies:
            return peer
        forwarded = (value for name, value in headers if name == b"x-forwarded-for")
        return client_address(peer, forwarded, self.proxies)

    def cached(self, key: str) -> CachedKey | Literal[Miss.MISS] | None:
        """Synchronous fast path for a well-formed key: the entry, None for a known-unknown key,
        or MISS when only the database can answer."""
        if self._fresh is not None and not self._fresh():
            return MISS
        return self.cache.get(self._digest(key))

    async def lookup(self, key: str, client: str | None = None) -> CachedKey | None:
        """The stored state of a well-formed key (None when unknown); ServiceUnavailable when
        neither the cache nor the database can answer, RateLimited when ``client`` had too
        many failed checks that needed the database."""
        hit = self.cached(key)
        if hit is not MISS:
            return hit
        generation = self.cache.generation
        digest = self._digest(key)
        flight = self._flights.get(digest)
        # Join a read of the same digest only if it started under this generation: one that
        # started before an invalidation this request has seen may hold the old state.
        if flight is None or flight[0] != generation:
            if self.throttle is not None:
                wait = self.throttle.retry_after(client)
                if wait is not None:
                    raise RateLimited(f"too many failed key checks; try again in {wait} s")
            task = asyncio.get_running_loop().create_task(self._fill(key, generation))
            task.add_done_callback(lambda t: None if t.cancelled() else t.exception())
            flight = (generation, task)
            self._flights[digest] = flight
            task.add_done_callback(lambda _t: self._land(digest, flight))
        # shield: a caller that goes away does not cancel the read the others wait for.
        entry = await asyncio.shield(flight[1])
        if self.throttle is not None and judge(entry, self.now()) is not Verdict.VALID:
            self.throttle.failed(client)
        return entry

    def _land(self, digest: str, flight: tuple[int, asyncio.Task[CachedKey | None]]) -> None:
        if self._flights.get(digest) is flight:
            del self._flights[digest]

    async def _fill(self, key: str, generation: int) -> CachedKey | None:
        digests = self._peppers.candidates(key)  # current pepper first: the cache key
        self.reads += 1
        row = await self._read(digests)
        entry = entry_from_row(row, digests) if row is not None else None
        self.cache.put(digests[0], entry, generation)
        if row is not None and self.retirer is not None:
            self.retirer.consider(row, digests, self._peppers)
        return entry

    async def _read(self, digests: list[str]) -> ApiKey | None:
        try:
            async with self._sessionmaker() as session:
                return await KeyRepository(session).get_by_digests(digests)
        except ServiceUnavailable:
            raise
        except DATABASE_ERRORS as exc:
            # Any failure of the database layer (refused, reset, timed out, pool exhausted,
            # disk full) is "cannot decide": 503, never a 500 and a traceback per request.
            self._warn.warning("cannot check a key", exc)
            raise ServiceUnavailable(f"cannot check the key: {describe(exc)}") from exc

    async def check(self, key: str, client: str | None = None) -> tuple[Verdict, CachedKey | None]:
        """Verdict and entry for any string; records usage when the key is accepted."""
        if not tokens.is_well_formed(key):
            return Verdict.MALFORMED, None
        entry = await self.lookup(key, client)
        verdict = judge(entry, self.now())
        if verdict is Verdict.VALID and entry is not None and self.usage is not None:
            self.usage.record(entry.id)
        elif entry is not None and self.refusals is not None:
            self.refusals.note(entry.id, verdict.value, client, self.now())
        return verdict, entry

    async def verify(self, key: str, client: str | None = None) -> VerifiedKey:
        """The key's identity, or AuthenticationFailed with the one generic message."""
        verdict, entry = await self.check(key, client)
        if verdict is not Verdict.VALID or entry is None:
            raise AuthenticationFailed(REJECTED_MESSAGE)
        return VerifiedKey.from_entry(entry)

    def forget(self, key_ids: frozenset[str]) -> None:
        """Called after a commit that changed ``key_ids``: the next request reads them anew."""
        self.cache.forget(key_ids)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The answer of the verify API."""

    verdict: Verdict
    key: VerifiedKey | None

    @property
    def valid(self) -> bool:
        """True only for VALID."""
        return self.verdict is Verdict.VALID


async def verify_key(
    verifier: Verifier, actor: Principal, *, key: str, scopes: Iterable[str]
) -> VerifyResult:
    """Tell a service whether ``key`` is valid and holds every one of ``scopes``."""
    actor.require(API_KEYS_VERIFY)
    verdict, entry = await verifier.check(key)
    if entry is None or verdict in (Verdict.MALFORMED, Verdict.NOT_FOUND):
        return VerifyResult(verdict, None)
    identity = VerifiedKey.from_entry(entry)
    if verdict is Verdict.VALID and not entry.scopes.issuperset(scopes):
        verdict = Verdict.INSUFFICIENT_SCOPE
    return VerifyResult(verdict, identity)
