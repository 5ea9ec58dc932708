"""The verifier: key string in, key identity or a refusal out.

This is the hot path (DESIGN.md section 4; docs/verification.md). The format check runs before any
digest or database work; the digest under the current pepper keys the per-process cache; a miss
reads the database by digest (every pepper version) and fills the cache, positive or negative.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from akener.accounts.permissions import API_KEYS_VERIFY, Principal
from akener.db.errors import DATABASE_ERRORS, RateLimitedLog, describe
from akener.errors import (
    AddressNotAllowed,
    AuthenticationFailed,
    InvalidInput,
    RateLimited,
    ServiceUnavailable,
    UsageExceeded,
)
from akener.keys import tokens
from akener.keys.limits import Limits
from akener.keys.models import ApiKey, KeyStatus, Owner
from akener.keys.peppers import Peppers
from akener.keys.repository import KeyRepository
from akener.verify.bearer import REJECTED_MESSAGE
from akener.verify.cache import MISS, CachedKey, KeyCache, Miss
from akener.verify.credits import Spent, spend
from akener.verify.limiter import (
    IP_NOT_ALLOWED,
    RATE_LIMITED,
    USAGE_EXCEEDED,
    Admission,
    EntryLimits,
    Rule,
    WindowCounters,
    WindowState,
    address_allowed,
    render_policy,
)
from akener.verify.refusals import RefusalRecorder
from akener.verify.retire import DigestRetirer
from akener.verify.shared import SharedWindows, StoreError
from akener.verify.throttle import FailureThrottle, Network, request_client
from akener.verify.usage import UsageRecorder

log = logging.getLogger("akener.verify")
MAX_COST = 1000
# Refusals of a key that was switched off or ran out: worth a key.refused event.
_PRESENTED_AFTER_END = frozenset({"INACTIVE", "EXPIRED"})


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


class Verdict(enum.StrEnum):
    """Why a key was accepted or refused (the verify API's ``code``)."""

    VALID = "VALID"
    NOT_FOUND = "NOT_FOUND"
    INACTIVE = "INACTIVE"
    EXPIRED = "EXPIRED"  # past its expiry, or a rotated-out secret past its grace period
    MALFORMED = "MALFORMED"
    INSUFFICIENT_SCOPE = "INSUFFICIENT_SCOPE"
    RATE_LIMITED = "RATE_LIMITED"
    USAGE_EXCEEDED = "USAGE_EXCEEDED"
    IP_NOT_ALLOWED = "IP_NOT_ALLOWED"


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    """What a check needs to know about an accepted key."""

    id: str
    name: str
    scopes: frozenset[str]
    owner_id: str | None = None
    # The effective expiry: the key's own, or a rotated-out secret's end of grace if sooner.
    expires_at: datetime | None = None
    # Any window, credits or allowlist (the key's or its owner's): every request must be asked.
    limited: bool = False

    @classmethod
    def from_entry(cls, entry: CachedKey) -> VerifiedKey:
        """The identity held by a cache entry."""
        limits: EntryLimits | None = entry.limits
        return cls(
            id=entry.id,
            name=entry.name,
            scopes=entry.scopes,
            owner_id=limits.owner_id if limits is not None else None,
            expires_at=entry.expiry,
            limited=is_limited(limits),
        )

    def principal(self, client: str | None = None) -> Principal:
        """The key acting on akener's own API: its scopes are its permissions."""
        return Principal(kind="key", id=self.id, permissions=self.scopes, client=client)


def is_limited(limits: EntryLimits | None) -> bool:
    """True when a request of the key must be counted or checked by akener: a window, credits
    or an address allowlist (its own or its owner's)."""
    return limits is not None and bool(limits.rules or limits.credits or limits.allowed)


def limits_of(row: ApiKey, owner: Owner | None) -> EntryLimits | None:
    """What the per-request checks need about the key's (and its owner's) limits."""
    own = row.limits()
    shared = owner.limits() if owner is not None else Limits()
    if not (own.windows or own.credits or own.allowed or own.owner_id):
        return None
    rules = tuple(Rule(f"k:{row.id}", w) for w in own.windows)
    rules += tuple(Rule(f"o:{row.owner_id}", w) for w in shared.windows)
    return EntryLimits(
        rules=rules,
        allowed=own.allowed,
        owner_id=row.owner_id,
        key_credits=own.credits is not None,
        owner_credits=shared.credits is not None,
        policy=render_policy(rules),
    )


def entry_from_row(row: ApiKey, digests: list[str], owner: Owner | None = None) -> CachedKey:
    """Copy the fields the checks read out of a row found by one of ``digests``.

    A row found by its previous digest is a rotated-out secret: valid only until its grace
    period ends (and never past the key's own expiry).
    """
    ends = [row.expires_at] if row.expires_at is not None else []
    if row.digest not in digests:
        ends.append(row.previous_valid_until or datetime.fromtimestamp(0, UTC))
    expiry = min(ends) if ends else None
    return CachedKey(
        id=row.id,
        name=row.name,
        scopes=row.effective_scopes,
        active=row.status == KeyStatus.ACTIVE.value,
        expires_at=expiry.timestamp() if expiry is not None else None,
        limits=limits_of(row, owner),
        expiry=expiry.astimezone(UTC) if expiry is not None else None,
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
        shared: SharedWindows | None = None,
        limits_on_store_error: str = "allow",
        refusals: RefusalRecorder | None = None,
        credits_on_store_error: str = "deny",
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
        self.counters = WindowCounters()
        # Windows counted in Redis for the whole fleet (None: this process counts alone).
        self.shared = shared
        self.limits_on_store_error = limits_on_store_error
        # The database cannot spend credits (an error, or a lock held past the query timeout):
        # "deny" answers 503, "allow" admits the request without spending (docs/limits.md).
        self.credits_on_store_error = credits_on_store_error
        self._credits_warn = RateLimitedLog(log)
        self._store_warned_at: float | None = None

    def client(self, peer: str | None, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        """The address a request comes from (forwarding headers only from a trusted proxy;
        akener.verify.throttle.request_client)."""
        if not self.proxies:
            return peer
        return request_client(peer, headers, self.proxies)

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
        found = await self._read(digests)
        entry = entry_from_row(found[0], digests, found[1]) if found is not None else None
        self.cache.put(digests[0], entry, generation)
        if found is not None and self.retirer is not None:
            self.retirer.consider(found[0], digests, self._peppers)
        return entry

    async def _read(self, digests: list[str]) -> tuple[ApiKey, Owner | None] | None:
        try:
            async with self._sessionmaker() as session:
                row = await KeyRepository(session).get_by_digests(digests)
                if row is None:
                    return None
                owner = await session.get(Owner, row.owner_id) if row.owner_id else None
                return row, owner
        except ServiceUnavailable:
            raise
        except DATABASE_ERRORS as exc:
            # Any failure of the database layer (refused, reset, timed out, pool exhausted,
            # disk full) is "cannot decide": 503, never a 500 and a traceback per request.
            self._warn.warning("cannot check a key", exc)
            raise ServiceUnavailable(f"cannot check the key: {describe(exc)}") from exc

    async def admit(self, entry: CachedKey, client: str | None, cost: int = 1) -> Admission | None:
        """Apply the key's limits to one request (None: the key has none). Counts the request
        in its windows and spends its credits only when every limit lets it through."""
        limits: EntryLimits | None = entry.limits
        if limits is None:
            return None
        if not address_allowed(limits.allowed, client):
            self.refused(entry.id, IP_NOT_ALLOWED, client)
            return Admission(IP_NOT_ALLOWED)
        now = self.now()
        shared = self.shared if limits.rules else None
        if shared is not None:
            try:
                wait, states = await shared.take(limits.rules)
            except StoreError as exc:
                self._warn_store(exc)
                if self.limits_on_store_error != "allow":
                    raise ServiceUnavailable("cannot count this key's rate limit") from exc
                shared, wait, states = None, None, []
        else:
            wait, states = self.counters.take(limits.rules, now)
        if wait is not None:
            self.refused(entry.id, RATE_LIMITED, client)
            self._rate_limited(entry, limits, states, client, now)
            return Admission(RATE_LIMITED, wait, states)
        admission = Admission(windows=states)
        if not limits.credits:
            return admission
        try:
            spent = await spend(
                self._sessionmaker,
                key_id=entry.id,
                owner_id=limits.owner_id,
                key_credits=limits.key_credits,
                owner_credits=limits.owner_credits,
                cost=cost,
                now=now,
            )
        except DATABASE_ERRORS as exc:
            if self.credits_on_store_error == "allow":
                # Availability chosen over exactness: admitted, nothing spent.
                self._credits_warn.warning(
                    "cannot spend credits; keys with credits are admitted without spending", exc
                )
                return admission
            self._give_back(shared, limits, now)
            self._credits_warn.warning(
                "cannot spend credits; keys with credits are refused with 503", exc
            )
            raise ServiceUnavailable(f"cannot spend credits: {describe(exc)}") from exc
        admission.credits_remaining, admission.refill_at = spent.remaining, spent.refill_at
        if not spent.ok:
            self._give_back(shared, limits, now)
            admission.code = USAGE_EXCEEDED
            if spent.refill_at is not None:
                admission.retry_after = max(1, math.ceil(spent.refill_at - now))
            self.refused(entry.id, USAGE_EXCEEDED, client)
            self._exhausted(entry, limits, spent, client, now)
        return admission

    def refused(self, key_id: str, reason: str, client: str | None) -> None:
        """Count one refused request of a known key by reason (written by the usage flush);
        a refused inactive or expired key is also noted for ``key.refused``."""
        if self.usage is not None:
            self.usage.refuse(key_id, reason)
        if self.refusals is not None and reason in _PRESENTED_AFTER_END:
            self.refusals.note(key_id, reason, client, self.now())

    def _rate_limited(
        self,
        entry: CachedKey,
        limits: EntryLimits,
        states: list[WindowState],
        client: str | None,
        now: float,
    ) -> None:
        # One key.rate_limited per key and window instance: the dedupe names the window and its
        # number (its end, in whole periods, identifies it on every process).
        if self.refusals is None:
            return
        for rule, state in zip(limits.rules, states, strict=False):
            if state.remaining > 0:
                continue
            number = round((now + state.reset) / state.period) - 1
            ends = (number + 1) * state.period
            whose = "owner" if rule.subject.startswith("o:") else "key"
            data = {
                "window": {
                    "name": state.name,
                    "limit": state.limit,
                    "period_seconds": state.period,
                    "applies_to": whose,
                },
                "owner_id": limits.owner_id,
                "resets_at": _iso(ends),
                "client": client,
            }
            dedupe = f"key.rate_limited:{entry.id}:{whose}:{state.name}:{state.period}:{number}"
            self.refusals.limited(entry.id, "key.rate_limited", dedupe, data, now)
            return

    def _exhausted(
        self, entry: CachedKey, limits: EntryLimits, spent: Spent, client: str | None, now: float
    ) -> None:
        # One key.credits_exhausted per key and refill period (credits without a refill: per
        # UTC day).
        if self.refusals is None:
            return
        period = (
            f"r{int(spent.refill_at)}" if spent.refill_at is not None else f"d{int(now // 86_400)}"
        )
        data = {
            "credits": {
                "applies_to": spent.whose or "key",
                "remaining": spent.remaining,
                "refill_at": _iso(spent.refill_at) if spent.refill_at is not None else None,
            },
            "owner_id": limits.owner_id,
            "client": client,
        }
        dedupe = f"key.credits_exhausted:{entry.id}:{spent.whose or 'key'}:{period}"
        self.refusals.limited(entry.id, "key.credits_exhausted", dedupe, data, now)

    def _warn_store(self, exc: StoreError) -> None:
        # One line per 10 s, not one per request, while Redis is unreachable.
        moment = time.monotonic()
        if self._store_warned_at is None or moment - self._store_warned_at >= 10:
            self._store_warned_at = moment
            log.warning(
                "cannot count rate limits in Redis (%s); rate-limited keys are %s until it is back",
                exc,
                "admitted" if self.limits_on_store_error == "allow" else "refused with 503",
            )

    def _give_back(self, shared: SharedWindows | None, limits: EntryLimits, now: float) -> None:
        if shared is not None:
            shared.give_back(limits.rules)
        elif self.shared is None:
            self.counters.give_back(limits.rules, now)

    async def check(self, key: str, client: str | None = None) -> tuple[Verdict, CachedKey | None]:
        """Verdict and entry for any string; records usage when the key is accepted."""
        verdict, entry, _ = await self.check_admitted(key, client)
        return verdict, entry

    async def check_admitted(
        self,
        key: str,
        client: str | None = None,
        cost: int = 1,
        limits: bool = True,
        record: bool = True,
    ) -> tuple[Verdict, CachedKey | None, Admission | None]:
        """Verdict, entry and the outcome of the key's limits; counts the request, accepted or
        refused by reason, unless ``record`` is False (the caller decides later)."""
        if not tokens.is_well_formed(key):
            return Verdict.MALFORMED, None, None
        entry = await self.lookup(key, client)
        verdict = self._judged(entry, client, record)
        admission = None
        if verdict is Verdict.VALID and entry is not None and limits:
            admission = await self.admit(entry, client, cost)
            if admission is not None and admission.code is not None:
                verdict = Verdict(admission.code)
        if verdict is Verdict.VALID and entry is not None and self.usage is not None and record:
            self.usage.record(entry.id)
        return verdict, entry, admission

    def _judged(self, entry: CachedKey | None, client: str | None, record: bool) -> Verdict:
        verdict = judge(entry, self.now())
        if verdict is not Verdict.VALID and entry is not None and record:
            self.refused(entry.id, verdict.value, client)
        return verdict

    def check_cached(
        self, key: str, record: bool = True
    ) -> tuple[Verdict, CachedKey | None] | None:
        """``check_admitted(key, limits=False)`` without awaiting, when the cache can answer;
        None when only the database can (then call check_admitted)."""
        if not tokens.is_well_formed(key):
            return Verdict.MALFORMED, None
        entry = self.cached(key)
        if entry is MISS:
            return None
        verdict = self._judged(entry, None, record)
        if verdict is Verdict.VALID and entry is not None and self.usage is not None and record:
            self.usage.record(entry.id)
        return verdict, entry

    async def verify(self, key: str, client: str | None = None) -> VerifiedKey:
        """The key's identity, or AuthenticationFailed with the one generic message;
        RateLimited, UsageExceeded or AddressNotAllowed when its limits refuse the request."""
        verdict, entry, admission = await self.check_admitted(key, client)
        if verdict is Verdict.IP_NOT_ALLOWED:
            raise AddressNotAllowed("this key may not be used from this address")
        if verdict is Verdict.RATE_LIMITED:
            wait = admission.retry_after if admission else None
            raise RateLimited(f"this key's rate limit is reached; try again in {wait} s", wait)
        if verdict is Verdict.USAGE_EXCEEDED:
            wait = admission.retry_after if admission else None
            raise UsageExceeded("this key has no credits left", wait)
        if verdict is not Verdict.VALID or entry is None:
            raise AuthenticationFailed(REJECTED_MESSAGE)
        return VerifiedKey.from_entry(entry)

    async def reread(self, key: str) -> CachedKey | None:
        """The stored state of a well-formed key read from the database, whatever the cache
        holds (a change stream checking its own key); ServiceUnavailable when it cannot."""
        digests = self._peppers.candidates(key)
        found = await self._read(digests)
        return entry_from_row(found[0], digests, found[1]) if found is not None else None

    def forget(self, key_ids: frozenset[str]) -> None:
        """Called after a commit that changed ``key_ids``: the next request reads them anew."""
        self.cache.forget(key_ids)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The answer of the verify API."""

    verdict: Verdict
    key: VerifiedKey | None
    admission: Admission | None = None

    @property
    def valid(self) -> bool:
        """True only for VALID."""
        return self.verdict is Verdict.VALID


async def verify_key(
    verifier: Verifier,
    actor: Principal,
    *,
    key: str,
    scopes: Iterable[str],
    ip: str | None = None,
    cost: int = 1,
) -> VerifyResult:
    """Tell a service whether ``key`` is valid, holds every one of ``scopes`` and, for a
    request from ``ip`` costing ``cost`` credits, passes its limits (which then count it)."""
    verdict, entry, admission = await check_for(
        verifier, actor, key=key, scopes=scopes, ip=ip, cost=cost
    )
    identity = VerifiedKey.from_entry(entry) if entry is not None else None
    return VerifyResult(verdict, identity, admission)


async def check_for(
    verifier: Verifier,
    actor: Principal,
    *,
    key: str,
    scopes: Iterable[str],
    ip: str | None = None,
    cost: int = 1,
) -> tuple[Verdict, CachedKey | None, Admission | None]:
    """verify_key's decision with the cache entry of the key found (None for MALFORMED and
    NOT_FOUND), for an edge that renders the entry itself (akener.api.fastpath)."""
    actor.require(API_KEYS_VERIFY)
    if not 0 <= cost <= MAX_COST:
        raise InvalidInput(f"cost must be between 0 and {MAX_COST}", field="cost")
    cached = verifier.check_cached(key, record=False)
    if cached is not None:
        verdict, entry = cached
    else:
        verdict, entry, _ = await verifier.check_admitted(key, limits=False, record=False)
    if entry is None or verdict in (Verdict.MALFORMED, Verdict.NOT_FOUND):
        return verdict, None, None
    if verdict is Verdict.VALID and not entry.scopes.issuperset(scopes):
        verdict = Verdict.INSUFFICIENT_SCOPE
    admission = None
    if verdict is Verdict.VALID:
        if entry.limits is not None:  # admit() is None without limits; it counts its refusals
            admission = await verifier.admit(entry, ip, cost)
        if admission is not None and admission.code is not None:
            verdict = Verdict(admission.code)
        elif verifier.usage is not None:
            verifier.usage.record(entry.id)
    else:
        verifier.refused(entry.id, verdict.value, ip)
    return verdict, entry, admission
