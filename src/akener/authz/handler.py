"""Forward-auth for reverse proxies: nginx ``auth_request``, Traefik ForwardAuth, Envoy ext_authz.

A plain ASGI handler, dispatched before the framework (DESIGN.md section 4): one pass over the
headers, the shared Verifier's synchronous cache path, and answers whose headers are rendered
once per cache entry. Any method is accepted.

* 200 — the key is valid (and holds every required scope): ``X-Akener-Key-Id``,
  ``X-Akener-Key-Name`` (UTF-8 percent-encoded, see ``header_name``) and ``X-Akener-Scopes``
  (space separated) for the proxy to pass upstream.
* 401 + ``WWW-Authenticate: Bearer`` — no, malformed, unknown or inactive key.
* 403 — valid key lacking a required scope. Required scopes come from the query of ``/authz``
  (``/authz?scope=a&scope=b``, set in the proxy's auth address) and from
  ``X-Akener-Required-Scope`` request headers (for Envoy, whose ``path_prefix`` makes the path
  ``/authz/<original path>``: the query then belongs to the client and is ignored).
* 500 ``AUTHZ_MISCONFIGURED`` — the query of the exact ``/authz`` path is not one akener
  understands (an unknown parameter such as ``scopes`` or ``Scope``, or an empty ``scope=``).
  That is a mistake in the proxy's configuration; answering 200 would require nothing, so akener
  refuses, and logs a warning at most every 10 seconds.
* 429 ``RATE_LIMITED`` — this client address had too many failed checks that needed the
  database (docs/verification.md, "Floods of unknown keys"); a cached key is still answered.
* 429 ``RATE_LIMITED`` / ``USAGE_EXCEEDED`` with ``Retry-After``, ``RateLimit-Policy`` and
  ``RateLimit`` — the key's own rate limit or credits (docs/limits.md); 403 ``IP_NOT_ALLOWED``
  — the client address is outside the key's allowlist.
* On 200 also ``X-Akener-Owner-Id`` and ``X-Akener-Credits-Remaining`` (empty when they do
  not apply).
* 503 — akener cannot decide (database unreachable and nothing trustworthy cached).

Every answer carries the identity headers, empty on refusals, so a proxy that copies only the
headers it receives still replaces whatever the client sent. Refusals also carry their JSON body
in ``X-Akener-Error`` for proxies that discard the body of the auth answer (nginx).

Each decision is logged at DEBUG only (docs/verification.md, "Logging"); the key never is.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from time import perf_counter
from typing import Any
from urllib.parse import quote, unquote_plus

from starlette.types import Receive, Scope, Send

from akener.errors import RateLimited, ServiceUnavailable
from akener.keys import tokens
from akener.logs import redact
from akener.verify.bearer import MISSING_MESSAGE, REJECTED_MESSAGE, bearer_credential
from akener.verify.cache import MISS, CachedKey
from akener.verify.limiter import (
    IP_NOT_ALLOWED,
    RATE_LIMITED,
    USAGE_EXCEEDED,
    Admission,
    EntryLimits,
)
from akener.verify.service import Verifier

log = logging.getLogger("akener.authz")

_AUTHORIZATION = b"authorization"
_REQUIRED_SCOPE = b"x-akener-required-scope"
# Every printable ASCII character except "%" stays as it is; the rest is UTF-8 percent-encoded.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
_MAX_QUERY_CACHE = 1024
_WARN_EVERY = 10.0  # seconds between two warnings about a misconfigured query


def header_name(name: str) -> bytes:
    """A key name as a header value: ASCII names unchanged, other characters (and "%")
    percent-encoded as UTF-8, so ``urllib.parse.unquote`` gives the name back."""
    return quote(name, safe=_HEADER_SAFE).encode("ascii")


# Sent empty on every refusal: a proxy that copies only the headers it receives (Envoy) then
# still replaces the client's own.
_NO_IDENTITY = [
    (b"x-akener-key-id", b""),
    (b"x-akener-key-name", b""),
    (b"x-akener-scopes", b""),
    (b"x-akener-owner-id", b""),
    (b"x-akener-credits-remaining", b""),
]


def _error(status: int, code: str, message: str, *extra: tuple[bytes, bytes]) -> dict[str, Any]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    # Rendered once: the server checks and copies each header on every answer.
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += extra
    headers += _NO_IDENTITY
    headers.append((b"x-akener-error", body))  # the body again, for nginx (docs/forward-auth.md)
    return {"status": status, "headers": headers, "body": body}


_BEARER = (b"www-authenticate", b"Bearer")
_MISSING = _error(401, "UNAUTHORIZED", MISSING_MESSAGE, _BEARER)
_REJECTED = _error(401, "UNAUTHORIZED", REJECTED_MESSAGE, _BEARER)
_FORBIDDEN = _error(403, "FORBIDDEN", "the key lacks a scope this route requires")
_RATE_LIMITED = _error(429, "RATE_LIMITED", "too many failed key checks from this address")
_IP_NOT_ALLOWED = _error(403, "IP_NOT_ALLOWED", "this key may not be used from this address")
_UNAVAILABLE = _error(503, "SERVICE_UNAVAILABLE", "cannot check the key right now")
_MISCONFIGURED = _error(
    500,
    "AUTHZ_MISCONFIGURED",
    "the proxy asks /authz with a query akener does not understand; see docs/forward-auth.md",
)
_EMPTY_BODY = {"type": "http.response.body", "body": b""}


_NO_CREDITS = (b"x-akener-credits-remaining", b"")


def _allow_headers(entry: CachedKey) -> list[tuple[bytes, bytes]]:
    limits: EntryLimits | None = entry.limits
    owner = limits.owner_id if limits is not None and limits.owner_id else ""
    return [
        (b"x-akener-key-id", entry.id.encode("ascii")),
        (b"x-akener-key-name", header_name(entry.name)),
        (b"x-akener-scopes", " ".join(sorted(entry.scopes)).encode("ascii")),
        (b"x-akener-owner-id", owner.encode("ascii")),
        (b"content-length", b"0"),
        _NO_CREDITS,  # last: a key with credits replaces it per request
    ]


def ratelimit_headers(admission: Admission, policy: bytes) -> list[tuple[bytes, bytes]]:
    """``RateLimit-Policy`` (``policy``, rendered once per cache entry) and ``RateLimit`` as in
    draft-ietf-httpapi-ratelimit-headers-11: one item per window, named by the window (quota
    ``q``, window ``w``; remaining ``r``, seconds to reset ``t``)."""
    if not admission.windows:
        return []
    state = ", ".join(f'"{w.name}";r={w.remaining};t={w.reset}' for w in admission.windows)
    return [(b"ratelimit-policy", policy), (b"ratelimit", state.encode("ascii"))]


def _credits_header(admission: Admission) -> tuple[bytes, bytes]:
    if admission.credits_remaining is None:
        return _NO_CREDITS
    return (b"x-akener-credits-remaining", str(admission.credits_remaining).encode("ascii"))


def _limited(admission: Admission, policy: bytes) -> dict[str, Any]:
    if admission.code == USAGE_EXCEEDED:
        message = "this key has no credits left"
    else:
        message = "this key's rate limit is reached"
    extra = ratelimit_headers(admission, policy)
    if admission.retry_after is not None:
        extra.append((b"retry-after", str(admission.retry_after).encode("ascii")))
    return _error(429, admission.code or RATE_LIMITED, message, *extra)


def _scopes_in(text: str) -> frozenset[str]:
    return frozenset(text.replace(",", " ").split())


def required_by_query(query: bytes) -> frozenset[str] | None:
    """The scopes a query of the exact ``/authz`` path requires, or None when akener does not
    understand it: every ``&``-separated part must be ``scope=`` with at least one scope."""
    found: frozenset[str] = frozenset()
    for part in query.decode("latin-1").split("&"):
        name, equals, value = part.partition("=")
        scopes = _scopes_in(unquote_plus(value))
        if not equals or name != "scope" or not scopes:
            return None
        found |= scopes
    return found


class ForwardAuth:
    """The ``/authz`` endpoint; shares the process's Verifier with the API's Bearer check."""

    def __init__(
        self, verifier: Verifier, observe: Callable[[int, float], None] | None = None
    ) -> None:
        self.verifier = verifier
        # Metrics (docs/metrics.md): told each answer's status and duration; None when off.
        self.observe = observe
        self._required_by_query: dict[bytes, frozenset[str] | None] = {}
        self._warned_at: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one forward-auth request."""
        if self.observe is not None:  # metrics: when the request arrived (docs/metrics.md)
            scope[_STARTED] = perf_counter()
        credential: bytes | None = None
        count = 0
        required: frozenset[str] = frozenset()
        query = scope["query_string"]
        if query and scope["path"] == "/authz":
            by_query = self._required_in(query)
            if by_query is None:
                self._warn(query)
                await self._answer(send, _MISCONFIGURED, scope)
                return
            required = by_query
        for name, value in scope["headers"]:
            if name == _AUTHORIZATION:
                credential = value
                count += 1
            elif name == _REQUIRED_SCOPE:
                required = required | _scopes_in(value.decode("latin-1"))
        if count != 1:
            await self._answer(send, _MISSING, scope)
            return
        key = bearer_credential(credential)  # type: ignore[arg-type]
        if key is None:
            await self._answer(send, _MISSING, scope)
            return
        if not tokens.is_well_formed(key):
            await self._answer(send, _REJECTED, scope)
            return
        verifier = self.verifier
        entry = verifier.cached(key)
        if entry is MISS:
            peer = scope.get("client")
            client = verifier.client(peer[0] if peer else None, scope["headers"])
            try:
                entry = await verifier.lookup(key, client)
            except ServiceUnavailable:
                await self._answer(send, _UNAVAILABLE, scope)
                return
            except RateLimited:
                await self._answer(send, _RATE_LIMITED, scope)
                return
        if (
            entry is None
            or not entry.active
            or (entry.expires_at is not None and entry.expires_at <= verifier.now())
        ):
            if entry is not None:
                peer = scope.get("client")
                client = verifier.client(peer[0] if peer else None, scope["headers"])
                verifier.refused(entry.id, "INACTIVE" if not entry.active else "EXPIRED", client)
            await self._answer(send, _REJECTED, scope)
            return
        if required and not entry.scopes.issuperset(required):
            verifier.refused(entry.id, "INSUFFICIENT_SCOPE", None)
            await self._answer(send, _FORBIDDEN, scope, entry)
            return
        headers = entry.edge
        if headers is None:
            headers = entry.edge = _allow_headers(entry)
        limits = entry.limits
        if limits is not None:
            client = None
            if limits.allowed:  # the address matters only to an allowlist
                peer = scope.get("client")
                client = verifier.client(peer[0] if peer else None, scope["headers"])
            try:
                admission = await verifier.admit(entry, client)
            except ServiceUnavailable:
                await self._answer(send, _UNAVAILABLE, scope, entry)
                return
            assert admission is not None
            if admission.code == IP_NOT_ALLOWED:
                await self._answer(send, _IP_NOT_ALLOWED, scope, entry)
                return
            if admission.code is not None:
                await self._answer(send, _limited(admission, limits.policy), scope, entry)
                return
            headers = [
                *headers[:-1],
                _credits_header(admission),
                *ratelimit_headers(admission, limits.policy),
            ]
        if verifier.usage is not None:
            verifier.usage.record(entry.id)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(_EMPTY_BODY)
        if self.observe is not None:
            self.observe(200, perf_counter() - scope[_STARTED])
        if log.isEnabledFor(logging.DEBUG):
            self._log(scope, 200, entry)

    def _required_in(self, query: bytes) -> frozenset[str] | None:
        # Proxies send the same few configured query strings again and again: parse each once.
        try:
            return self._required_by_query[query]
        except KeyError:
            found = required_by_query(query)
            if len(self._required_by_query) < _MAX_QUERY_CACHE:
                self._required_by_query[query] = found
            return found

    def _warn(self, query: bytes) -> None:
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < _WARN_EVERY:
            return
        self._warned_at = now
        log.warning(
            "authz query not understood: refusing every request until the proxy is fixed",
            extra={"query": redact(query.decode("latin-1"))[:200], "code": "AUTHZ_MISCONFIGURED"},
        )

    async def _answer(
        self, send: Send, answer: dict[str, Any], scope: Scope, entry: CachedKey | None = None
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": answer["status"],
                "headers": answer["headers"],
            }
        )
        await send({"type": "http.response.body", "body": answer["body"]})
        if self.observe is not None:
            self.observe(answer["status"], perf_counter() - scope[_STARTED])
        if log.isEnabledFor(logging.DEBUG):
            self._log(scope, answer["status"], entry)

    def _log(self, scope: Scope, status: int, entry: CachedKey | None) -> None:
        wanted = {b"x-original-uri", b"x-forwarded-uri", b"x-forwarded-for"}
        seen = {
            name.decode("latin-1"): value.decode("latin-1")[:200]
            for name, value in scope["headers"]
            if name in wanted
        }
        client = scope.get("client")
        log.debug(
            "authz",
            extra={
                "status": status,
                "key_id": entry.id if entry is not None else None,
                "client": client[0] if client else None,
                **{name.replace("-", "_"): value for name, value in seen.items()},
            },
        )


# Metrics: the request's arrival time waits in its scope (a float: nothing the garbage collector
# tracks is allocated per request, unlike a wrapped ``send``; bench/metrics_overhead.py).
_STARTED = "akener.started"


async def not_started(scope: Scope, receive: Receive, send: Send) -> None:
    """The answer before the process is ready (or after it stopped): cannot decide."""
    await send(
        {
            "type": "http.response.start",
            "status": _UNAVAILABLE["status"],
            "headers": _UNAVAILABLE["headers"],
        }
    )
    await send({"type": "http.response.body", "body": _UNAVAILABLE["body"]})
