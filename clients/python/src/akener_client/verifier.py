"""``Verifier``: check akener keys inside your own process, in microseconds, and still refuse a
switched-off key as soon as akener's own processes do.

How it decides:

* The first check of a key asks akener (``POST /api/v1/keys/verify``). The answer says who the
  key is, its scopes, owner, when it stops working (its expiry, or the end of a rotated-out
  secret's grace period) and whether it has limits.
* Later checks of the same key answer from memory. Memory holds a keyed BLAKE2b digest of each
  key, never the key itself, and honours the expiry by the clock.
* A background thread follows akener's change stream (``GET /api/v1/keys/changes``) and forgets
  every key that changes; a ``reset`` forgets everything.
* Memory is trusted only while the stream is in sync (after its ``ready`` event, with heartbeats
  arriving). Otherwise every check asks akener, and when akener cannot be reached the answer is
  ``UNAVAILABLE``: never valid.
* A key with limits (rate limits, credits, an address allowlist) or an owner (whose shared
  limits may change) is asked about every time, so akener counts it exactly. So is every key
  when akener does not say whether it has limits and when it expires.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from akener_client._http import USER_AGENT, SSEParser, base_url, bearer

UNAVAILABLE = "UNAVAILABLE"
MALFORMED = "MALFORMED"
_HEX = frozenset("0123456789abcdef")
_KEY_LENGTH = len("akener_") + 64
# Backoff between reconnections of the change stream (seconds), jittered.
_BACKOFF_START = 0.1
_BACKOFF_MAX = 5.0
# How many recently changed key ids are remembered to judge answers that were being fetched.
_CHANGES_KEPT = 4096


def well_formed(key: str) -> bool:
    """``akener_`` and 64 lowercase hex digits (akener refuses anything else unseen)."""
    return (
        isinstance(key, str)
        and len(key) == _KEY_LENGTH
        and key.startswith("akener_")
        and _HEX.issuperset(key[7:])
    )


@dataclass(frozen=True, slots=True)
class Verification:
    """The answer about one key: ``valid`` only when akener would accept it for the scopes.

    ``code`` is akener's (``VALID``, ``NOT_FOUND``, ``INACTIVE``, ``EXPIRED``, ``MALFORMED``,
    ``INSUFFICIENT_SCOPE``, ``RATE_LIMITED``, ``USAGE_EXCEEDED``, ``IP_NOT_ALLOWED``) or
    ``UNAVAILABLE`` when akener could not be asked. ``key_id``, ``name``, ``scopes`` and
    ``owner_id`` describe the key when one was found. ``cached`` says the answer came from memory.
    """

    valid: bool
    code: str
    key_id: str | None = None
    name: str | None = None
    scopes: frozenset[str] = frozenset()
    owner_id: str | None = None
    retry_after: float | None = None
    cached: bool = False

    @property
    def status(self) -> int:
        """The HTTP status akener would answer with: 200, 401, 403, 429 or 503."""
        return _STATUS.get(self.code, 401)


_STATUS = {
    "VALID": 200,
    "INSUFFICIENT_SCOPE": 403,
    "IP_NOT_ALLOWED": 403,
    "RATE_LIMITED": 429,
    "USAGE_EXCEEDED": 429,
    UNAVAILABLE: 503,
}
_MALFORMED = Verification(False, MALFORMED)


class _Entry:
    """What memory holds about one key: answers ready to hand out, and when they stop."""

    __slots__ = ("expired", "expires_at", "id", "refused", "scopes", "valid")

    def __init__(self, code: str, key: dict[str, Any], expires_at: float | None) -> None:
        self.id: str = key["id"]
        self.scopes = frozenset(key.get("scopes") or ())
        self.expires_at = expires_at
        ident = (self.id, key.get("name"), self.scopes, key.get("owner_id"))
        active = code in ("VALID", "INSUFFICIENT_SCOPE")
        self.valid = Verification(True, "VALID", *ident, cached=True) if active else None
        self.refused = Verification(
            False, "INSUFFICIENT_SCOPE" if active else code, *ident, cached=True
        )
        self.expired = Verification(False, "EXPIRED", *ident, cached=True)


def _expiry(key: dict[str, Any]) -> tuple[bool, float | None]:
    """(known, POSIX seconds or None) of the key's ``expires_at``; unknown when not sent."""
    if "expires_at" not in key:
        return False, None
    value = key["expires_at"]
    if value is None:
        return True, None
    try:
        return True, datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False, None


class Verifier:
    """Checks keys in process; ``verify`` (sync) and ``averify`` (async) share one memory.

    ``url`` is akener's address and ``key`` a key holding ``api_keys.verify``. The change stream
    starts with the verifier (``stream=False`` turns memory off: every check asks). Call
    ``close()`` (or use it as a context manager) to stop it.
    """

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 5.0,
        max_keys: int = 100_000,
        max_unknown: int = 65_536,
        stream: bool = True,
        heartbeat_grace: float = 2.5,
    ) -> None:
        self.url = base_url(url)
        self._headers = {
            "Authorization": bearer(key),
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
        }
        self.timeout = timeout
        self.max_keys = max_keys
        self.max_unknown = max_unknown
        self.heartbeat_grace = heartbeat_grace
        self._salt = secrets.token_bytes(32)  # digests mean nothing outside this process
        self._known: dict[bytes, _Entry] = {}
        self._by_id: dict[str, bytes] = {}
        self._unknown: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()
        # Every forget counts one generation. An answer fetched under generation g is kept only
        # if its key did not change since (``_changed``) and nothing was cleared since.
        self._generation = 0
        self._cleared = 0
        self._changed: OrderedDict[str, int] = OrderedDict()
        self.trusted = False  # memory answers only while the change stream is in sync
        # ... and while it is heard from: a heartbeat or an event before this (monotonic) time.
        self._alive_until = 0.0
        self._heartbeat = 15.0  # akener's default; ``ready`` tells the real one
        self.cursor: str | None = None  # the change stream's last id
        self.connects = 0  # how many times the change stream was (re)established
        self._http = httpx.Client(base_url=self.url, timeout=timeout, follow_redirects=False)
        self._ahttp: httpx.AsyncClient | None = None
        self._closed = threading.Event()
        self._response: httpx.Response | None = None
        self._thread: threading.Thread | None = None
        if stream:
            self._thread = threading.Thread(target=self._follow, name="akener-changes", daemon=True)
            self._thread.start()

    def __repr__(self) -> str:
        return f"Verifier(url={self.url!r})"

    # --- checks --------------------------------------------------------------------------------

    def _digest(self, key: str) -> bytes:
        return _blake2b(key.encode(), key=self._salt, digest_size=16).digest()

    def cached(self, api_key: str, scopes: Iterable[str] = ()) -> Verification | None:
        """The answer from memory, or None when akener must be asked."""
        if not self.trusted or _monotonic() > self._alive_until:
            return None
        digest = _blake2b(api_key.encode(), key=self._salt, digest_size=16).digest()
        entry = self._known.get(digest)
        if entry is None:
            return _NOT_FOUND if digest in self._unknown else None
        if entry.expires_at is not None and _time() >= entry.expires_at:
            return entry.expired
        valid = entry.valid
        if valid is None or (scopes and not entry.scopes.issuperset(scopes)):
            return entry.refused
        return valid

    def verify(
        self, api_key: str, scopes: Iterable[str] = (), *, ip: str | None = None
    ) -> Verification:
        """Whether ``api_key`` is accepted for every scope in ``scopes`` (``ip``: the end
        user's address, for keys with an allowlist)."""
        # The memory path, inlined: this is what must cost microseconds.
        if self.trusted and _monotonic() <= self._alive_until:
            entry = self._known.get(
                _blake2b(api_key.encode(), key=self._salt, digest_size=16).digest()
            )
            if entry is not None:
                if entry.expires_at is not None and _time() >= entry.expires_at:
                    return entry.expired
                valid = entry.valid
                if valid is None or (scopes and not entry.scopes.issuperset(scopes)):
                    return entry.refused
                return valid
        found = self.cached(api_key, scopes)
        if found is not None:
            return found
        if not well_formed(api_key):
            return _MALFORMED
        scopes = tuple(scopes)
        generation = self._generation
        try:
            answer = self._http.post(
                "/api/v1/keys/verify",
                content=_body(api_key, scopes, ip),
                headers=self._headers,
            )
        except httpx.HTTPError:
            return _UNAVAILABLE
        return self._read(api_key, answer, generation)

    async def averify(
        self, api_key: str, scopes: Iterable[str] = (), *, ip: str | None = None
    ) -> Verification:
        """``verify`` for async code: asks akener without blocking the event loop."""
        found = self.cached(api_key, scopes)
        if found is not None:
            return found
        if not well_formed(api_key):
            return _MALFORMED
        scopes = tuple(scopes)
        generation = self._generation
        if self._ahttp is None:
            self._ahttp = httpx.AsyncClient(
                base_url=self.url, timeout=self.timeout, follow_redirects=False
            )
        try:
            answer = await self._ahttp.post(
                "/api/v1/keys/verify",
                content=_body(api_key, scopes, ip),
                headers=self._headers,
            )
        except httpx.HTTPError:
            return _UNAVAILABLE
        return self._read(api_key, answer, generation)

    def _read(self, api_key: str, answer: httpx.Response, generation: int) -> Verification:
        if answer.status_code != 200:
            return _UNAVAILABLE  # our own key refused, akener limited or failing: cannot tell
        try:
            data = answer.json()
            code = str(data["code"])
            key = data.get("key")
            limits = data.get("limits") or {}
        except (ValueError, KeyError, TypeError):
            return _UNAVAILABLE
        retry = _retry_after(limits, code)
        if not isinstance(key, dict):
            if code == "NOT_FOUND":
                self._remember_unknown(api_key, generation)
            return Verification(False, code)
        result = Verification(
            bool(data.get("valid")) and code == "VALID",
            code,
            key.get("id"),
            key.get("name"),
            frozenset(key.get("scopes") or ()),
            key.get("owner_id"),
            retry,
        )
        known, expires_at = _expiry(key)
        # Keep only what memory can answer exactly: no limits (akener must count those), no
        # owner (an owner's shared limits can change without a change of the key), an expiry
        # akener stated, and a state that only a change of the key (or the clock) can move.
        if (
            known
            and key.get("limited") is False
            and key.get("owner_id") is None
            and code in ("VALID", "INSUFFICIENT_SCOPE", "INACTIVE", "EXPIRED")
        ):
            self._remember(api_key, _Entry(code, key, expires_at), generation)
        return result

    def _remember(self, api_key: str, entry: _Entry, generation: int) -> None:
        digest = self._digest(api_key)
        with self._lock:
            if self._changed_since(entry.id, generation):
                return  # the key changed while akener was asked: the answer may be old
            old = self._by_id.get(entry.id)
            if old is not None and old != digest:
                self._known.pop(old, None)  # a rotated key: one digest per id
            self._known[digest] = entry
            self._by_id[entry.id] = digest
            while len(self._known) > self.max_keys:
                evicted = self._known.pop(next(iter(self._known)))
                self._by_id.pop(evicted.id, None)

    def _remember_unknown(self, api_key: str, generation: int) -> None:
        # A key akener does not know never becomes known: keys are 32 random bytes.
        digest = self._digest(api_key)
        with self._lock:
            if generation < self._cleared:
                return
            self._unknown[digest] = None
            while len(self._unknown) > self.max_unknown:
                self._unknown.popitem(last=False)

    # --- forgetting ----------------------------------------------------------------------------

    def _changed_since(self, key_id: str, generation: int) -> bool:
        if generation < self._cleared:
            return True
        changed = self._changed.get(key_id)
        return changed is not None and changed > generation

    def forget(self, key_id: str) -> None:
        """Drop what memory holds about one key; an answer about it that was being fetched
        meanwhile is not kept either."""
        with self._lock:
            self._generation += 1
            self._changed[key_id] = self._generation
            self._changed.move_to_end(key_id)
            if len(self._changed) > _CHANGES_KEPT:
                _, oldest = self._changed.popitem(last=False)
                self._cleared = max(self._cleared, oldest)  # older answers: not kept at all
            digest = self._by_id.pop(key_id, None)
            if digest is not None:
                self._known.pop(digest, None)

    def forget_all(self) -> None:
        """Drop everything memory holds (answers about unknown keys stay: they cannot change)."""
        with self._lock:
            self._generation += 1
            self._cleared = self._generation
            self._changed.clear()
            self._known.clear()
            self._by_id.clear()

    def __len__(self) -> int:
        return len(self._known)

    # --- the change stream ---------------------------------------------------------------------

    def _follow(self) -> None:
        backoff = _BACKOFF_START
        while not self._closed.is_set():
            try:
                self._listen()
                backoff = _BACKOFF_START
            except (httpx.HTTPError, httpx.StreamError, ValueError, OSError):
                pass  # the stream broke (or close() closed it): reconnect after a pause
            finally:
                self.trusted = False
            if self._closed.wait(backoff * random.uniform(0.5, 1.5)):  # noqa: S311 -- timing
                return
            backoff = min(backoff * 2, _BACKOFF_MAX)

    def _listen(self) -> None:
        headers = {**self._headers, "Accept": "text/event-stream"}
        headers.pop("Content-Type")
        if self.cursor is not None:
            headers["Last-Event-ID"] = self.cursor
        # A stream silent for longer than a few heartbeats is dead: reconnect.
        timeout = httpx.Timeout(self.timeout, read=self._heartbeat * self.heartbeat_grace)
        with self._http.stream(
            "GET", "/api/v1/keys/changes", headers=headers, timeout=timeout
        ) as response:
            if response.status_code != 200:
                return
            self._response = response
            parser = SSEParser()
            for line in response.iter_lines():
                self._alive_until = time.monotonic() + self._heartbeat * self.heartbeat_grace
                event = parser.feed(line)
                if event is None:
                    continue
                if event.id:
                    self.cursor = event.id
                if not self._on_event(event.event, event.data):
                    return

    def _on_event(self, name: str, data: Any) -> bool:
        """Apply one event; False when the stream is over."""
        if name == "change" and isinstance(data, dict):
            # A new key cannot be in memory (its secret did not exist before): nothing to drop.
            if data.get("change") != "created":
                self.forget(str(data.get("key_id")))
        elif name == "reset":
            self.forget_all()
        elif name == "ready":
            if isinstance(data, dict) and isinstance(data.get("heartbeat_seconds"), int | float):
                self._heartbeat = max(0.1, float(data["heartbeat_seconds"]))
                self._alive_until = time.monotonic() + self._heartbeat * self.heartbeat_grace
            self.connects += 1
            self.trusted = True
        elif name == "end":
            self.trusted = False
            return False
        return True

    # --- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop following the change stream and close connections."""
        self._closed.set()
        self.trusted = False
        response = self._response
        if response is not None:
            response.close()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout)
        self._http.close()

    async def aclose(self) -> None:
        """``close`` for async code (also closes the async connection pool)."""
        await asyncio.to_thread(self.close)
        if self._ahttp is not None:
            await self._ahttp.aclose()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until memory is trusted (the change stream is in sync); False on timeout."""
        deadline = time.monotonic() + timeout
        while not self.trusted:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


_UNAVAILABLE = Verification(False, UNAVAILABLE)
_blake2b = hashlib.blake2b
_monotonic = time.monotonic
_time = time.time
_NOT_FOUND = Verification(False, "NOT_FOUND", cached=True)


def _body(api_key: str, scopes: tuple[str, ...], ip: str | None) -> bytes:
    body: dict[str, Any] = {"key": api_key, "scopes": list(scopes)}
    if ip is not None:
        body["ip"] = ip
    return json.dumps(body).encode()


def _retry_after(limits: Any, code: str) -> float | None:
    """Seconds until a refused limited key may try again, from the verify answer's limits."""
    if code not in ("RATE_LIMITED", "USAGE_EXCEEDED") or not isinstance(limits, dict):
        return None
    waits = [
        float(w["reset_seconds"])
        for w in limits.get("windows") or ()
        if isinstance(w, dict) and w.get("remaining") == 0 and "reset_seconds" in w
    ]
    return max(waits) if waits else None
