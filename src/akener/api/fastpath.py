"""The API's hot routes without the framework, for the common case (docs/verification.md).

``POST /api/v1/keys/verify``, ``GET /api/v1/whoami``, ``GET /api/v1/keys/{id}`` and
``GET /api/v1/keys`` are what services call on every request of their own, so they are
dispatched before FastAPI like ``/authz``. The FastAPI routes stay the documented reference,
and this module answers only with what they would answer, byte for byte
(tests/integration/test_fastpath.py compares the two on odd requests):

* Anything unusual goes to the framework untouched: another method, another content type, no
  ``Content-Length``, a body that is not exactly what ``VerifyRequest`` accepts. The body read
  here is handed on with the request.
* The calling key is checked exactly as the Bearer layer checks it (``Verifier.verify``: its
  status, expiry, allowlist, windows and credits), and its refusals are rendered by the same
  function (``akener_error_response``).
* ``whoami``, one key and a page of the key list answer from a copy of the framework's own
  answer (status 200, headers and body) kept for at most ``RENDER_TTL`` seconds, and only while
  the key cache's generation has not moved: any key change (of any key, on any process or host,
  as the key cache learns it) drops every copy; so does, for the list, any write through this
  process (a new key makes no change event). When there is no copy, the framework answers (with
  the caller already authenticated, so its limits count once) and its answer is kept.
* The access line (``akener.request``) is the same as the framework's (akener.logs.log_request).

Each route is one method below so that counters (metrics) can be added to each separately.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from akener.accounts.permissions import API_KEYS_READ, Principal
from akener.api.auth import AUTHENTICATED
from akener.api.errors import akener_error_response
from akener.api.verify import limits_read, verified_read
from akener.errors import AkenerError
from akener.keys import tokens
from akener.keys.schemas import MAX_SCOPES
from akener.logs import log_request
from akener.runtime import Runtime
from akener.verify.bearer import authorization_values, parse_bearer
from akener.verify.cache import CachedKey
from akener.verify.service import MAX_COST, Verdict, VerifiedKey, Verifier, check_for

VERIFY_PATH = "/api/v1/keys/verify"
WHOAMI_PATH = "/api/v1/whoami"
KEY_PREFIX = "/api/v1/keys/"
LIST_PATH = "/api/v1/keys"
KEY_ID_LENGTH = 32  # uuid4().hex
RENDER_TTL = 1.0  # seconds a copy of a key's answer may be served (request_count, last_used_at)
MAX_RENDERED = 10_000
MAX_FAST_BODY = 16 * 1024  # larger verify bodies (still valid) go through the framework

_FIELDS = frozenset({"key", "scopes", "ip", "cost"})
Copy = tuple[Message, bytes]  # a kept answer: its response start and its body
_HEX = frozenset("0123456789abcdef")
_JSON_HEADERS = (b"content-type", b"application/json")
_DECODE = json.JSONDecoder().decode  # the decoder json.loads uses when given no options

log = logging.getLogger("akener.request")


class Handoff(Exception):
    """The request is not the common case: the framework answers it."""


def _text(value: object, limit: int) -> str:
    """A JSON string the strict model accepts as is (no lone surrogates), else Handoff."""
    if type(value) is not str or len(value) > limit:
        raise Handoff
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Handoff from None
    return value


def parse_verify_body(body: bytes) -> tuple[str, list[str], str | None, int]:
    """``key``, ``scopes``, ``ip`` and ``cost`` of a body ``VerifyRequest`` accepts as it is;
    Handoff for anything else (the framework then answers 400 or 422)."""
    try:
        # json.loads(body), what the framework uses (Request.json), without its argument checks.
        data = _DECODE(body.decode(json.detect_encoding(body), "surrogatepass"))
    except ValueError:
        raise Handoff from None
    if type(data) is not dict or "key" not in data or not _FIELDS.issuperset(data):
        raise Handoff
    key = _text(data["key"], 4096)
    scopes = data.get("scopes", [])
    if type(scopes) is not list or len(scopes) > MAX_SCOPES:
        raise Handoff
    for scope in scopes:
        _text(scope, 1 << 30)
    ip = data.get("ip")
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(_text(ip, 64)))
        except ValueError:
            raise Handoff from None
    cost = data.get("cost", 1)
    if type(cost) is not int or not 0 <= cost <= MAX_COST:
        raise Handoff
    return key, scopes, ip, cost


def _client(verifier: Verifier, scope: Scope) -> str | None:
    peer = scope.get("client")
    return verifier.client(peer[0] if peer else None, scope["headers"])


class Rendered:
    """What the fast path renders once per cache entry (it dies with the entry, so it never
    outlives a change): the key as a caller, its ``key`` object and the VALID answer."""

    __slots__ = ("key", "principal", "valid")

    def __init__(self, entry: CachedKey) -> None:
        self.principal = Principal(kind="key", id=entry.id, permissions=entry.scopes)
        self.key = verified_read(VerifiedKey.from_entry(entry)).model_dump_json().encode()
        self.valid = b'{"valid":true,"code":"VALID","key":' + self.key + b',"limits":null}'


def _rendered(entry: CachedKey) -> Rendered:
    rendered = entry.api
    if rendered is None:
        rendered = entry.api = Rendered(entry)
    assert isinstance(rendered, Rendered)
    return rendered


def _cached_caller(verifier: Verifier, key: str) -> Principal | None:
    """What ``Verifier.verify`` decides for a cached, valid key without limits, without awaiting
    and without the client address (only limits, the flood guard on a miss and the audit log
    read it; _handoff adds it); None for any other key."""
    if not tokens.is_well_formed(key):
        return None
    entry = verifier.cached(key)
    if (
        isinstance(entry, CachedKey)
        and entry.limits is None
        and entry.active
        and (entry.expires_at is None or entry.expires_at > verifier.now())
    ):
        if verifier.usage is not None:
            verifier.usage.record(entry.id)
        return _rendered(entry).principal
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` giving ``messages`` (already read here) again first."""
    pending = list(messages)

    async def again() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return again


class ApiFastPath:
    """The hot API routes for the common case; ``framework`` (the full stack) for the rest."""

    def __init__(self, framework: ASGIApp, max_body_bytes: int) -> None:
        self.framework = framework
        self.max_body = min(max_body_bytes, MAX_FAST_BODY)
        self.runtime: Runtime | None = None
        # key id, or "?" + query for a page of the key list -> (stamp, monotonic deadline,
        # response start, body); the stamp is (key cache generation, writes, usage flushes).
        self._rendered: dict[str, tuple[tuple[int, int, int], float, Message, bytes]] = {}
        # Answers to requests that may have changed keys (any but GET, HEAD, OPTIONS, /authz and
        # the verify API) sent by this process: a new key changes the list without a change event.
        self.writes = 0
        self.answered = 0  # requests answered here without the framework (tests read it)
        # Metrics (akener.metrics), set by the app while they are on: each answer, each verdict.
        self.observe: Callable[[str, int, float], None] | None = None
        self.verdicts: Callable[[str], None] | None = None
        # What is being copied right now: (stamp, the answer once there) per copy key, so that
        # requests arriving meanwhile wait for it instead of each asking the framework.
        self._flights: dict[str, tuple[tuple[int, int, int], asyncio.Future[Copy | None]]] = {}

    def noting_writes(self, send: Send) -> Send:
        """``send`` for a request that may change keys: its answer, sent after its commit,
        drops the list's copies (a new key makes no change event)."""

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.writes += 1
            await send(message)

        return noting

    def start(self, runtime: Runtime | None) -> None:
        """Serve with ``runtime`` (None: everything goes to the framework)."""
        self.runtime = runtime
        self._rendered.clear()

    def route(self, path: str) -> Callable[[Scope, Receive, Send], Any] | None:
        """The handler for ``path``, or None when the framework handles it."""
        if self.runtime is None:
            return None
        if path == VERIFY_PATH:
            return self.verify
        if path == WHOAMI_PATH:
            return self.whoami
        if path == LIST_PATH:
            return self.list_keys
        if (
            len(path) == len(KEY_PREFIX) + KEY_ID_LENGTH
            and path.startswith(KEY_PREFIX)
            and _HEX.issuperset(path[len(KEY_PREFIX) :])
        ):
            return self.get_key
        return None

    # --- POST /api/v1/keys/verify --------------------------------------------------------------

    async def verify(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The verify API (akener.api.verify.verify) for a well-formed JSON body."""
        started = time.perf_counter() if log.isEnabledFor(logging.INFO) else 0.0
        length = self._json_length(scope) if scope["method"] == "POST" else None
        if length is None:
            await self.framework(scope, receive, send)
            return
        messages, body = await self._read(receive, length)
        try:
            if body is None:
                raise Handoff
            key, scopes, ip, cost = parse_verify_body(body)
        except Handoff:
            await self.framework(scope, _replay(messages, receive), send)
            return
        runtime = self.runtime
        assert runtime is not None
        verifier = runtime.verifier
        try:
            actor = await self._caller(verifier, scope)
            verdict, entry, admission = await check_for(
                verifier, actor, key=key, scopes=scopes, ip=ip, cost=cost
            )
        except AkenerError as exc:
            await self._refuse(exc, scope, receive, send, started)
            return
        if entry is not None and verdict is Verdict.VALID and admission is None:
            answer = _rendered(entry).valid  # the common answer, rendered once per entry
        else:
            limits = limits_read(admission)
            answer = b"".join(
                (
                    b'{"valid":true,"code":"'
                    if verdict is Verdict.VALID
                    else b'{"valid":false,"code":"',
                    verdict.value.encode("ascii"),
                    b'","key":',
                    b"null" if entry is None else _rendered(entry).key,
                    b',"limits":',
                    b"null" if limits is None else limits.model_dump_json().encode(),
                    b"}",
                )
            )
        await self._send_json(send, answer)
        self.answered += 1
        if self.verdicts is not None:
            self.verdicts(verdict.value)
        self._done(scope, 200, started)

    def _json_length(self, scope: Scope) -> int | None:
        """The body length of a request with one ``Content-Type: application/json`` and one
        small ``Content-Length`` (and no other framing); None otherwise."""
        content_type = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                if content_type is not None:
                    return None
                content_type = value
            elif name == b"content-length":
                if length is not None or not value.isdigit():
                    return None
                length = int(value)
            elif name == b"transfer-encoding":
                return None
        if content_type != b"application/json" or length is None:
            return None
        return length if 0 < length <= self.max_body else None

    @staticmethod
    async def _read(receive: Receive, length: int) -> tuple[list[Message], bytes | None]:
        """Every message of the body; the body, or None when it is not ``length`` bytes or the
        client went away."""
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body = message.get("body", b"")
            return [message], body if len(body) == length else None
        messages: list[Message] = [message]
        chunks: list[bytes] = []
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages, None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return messages, body if len(body) == length else None

    # --- GET /api/v1/whoami and GET /api/v1/keys/{id} -------------------------------------------

    async def whoami(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The calling key (akener.api.keys.whoami)."""
        await self._key_answer(scope, receive, send, None)

    async def get_key(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One key by id (akener.api.keys.get_key), for a caller holding api_keys.read."""
        await self._key_answer(scope, receive, send, scope["path"][len(KEY_PREFIX) :])

    async def list_keys(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A page of the key list (akener.api.keys.list_keys), for a caller holding
        api_keys.read; its copy is also dropped by any write through this process."""
        await self._key_answer(scope, receive, send, "?" + scope["query_string"].decode("latin-1"))

    async def _key_answer(
        self, scope: Scope, receive: Receive, send: Send, key_id: str | None
    ) -> None:
        started = time.perf_counter()
        if scope["method"] != "GET" or not self._bodiless(scope):
            await self.framework(scope, receive, send)
            return
        runtime = self.runtime
        assert runtime is not None
        verifier = runtime.verifier
        try:
            actor = await self._caller(verifier, scope)
        except AkenerError as exc:
            await self._refuse(exc, scope, receive, send, started)
            return
        if key_id is None:
            key_id = actor.id
        elif not actor.has(API_KEYS_READ):
            await self._handoff(scope, receive, send, actor)  # the framework's 403
            return
        cache = verifier.cache
        stamp = self._stamp(cache.generation)
        copy = self._rendered.get(key_id)
        if copy is not None and copy[0] == stamp and cache.trusted and copy[1] > time.monotonic():
            await self._send_copy(scope, send, (copy[2], copy[3]), started)
            return
        flight = self._flights.get(key_id)
        if flight is not None and flight[0] == stamp and cache.trusted:
            shared = await asyncio.shield(flight[1])
            if shared is not None and self._stamp(cache.generation) == stamp and cache.trusted:
                await self._send_copy(scope, send, shared, started)
                return
        await self._handoff(scope, receive, send, actor, (key_id, stamp))

    async def _send_copy(self, scope: Scope, send: Send, copy: Copy, started: float) -> None:
        await send(copy[0])
        await send({"type": "http.response.body", "body": copy[1]})
        self.answered += 1
        self._done(scope, 200, started)

    def _stamp(self, generation: int) -> tuple[int, int, int]:
        """What a copy depends on: key changes, writes through this process, and usage counts
        written (a copy never shows a request count older than the last flush)."""
        usage = self.runtime.usage if self.runtime is not None else None
        return generation, self.writes, usage.written if usage is not None else 0

    @staticmethod
    def _bodiless(scope: Scope) -> bool:
        for name, _ in scope["headers"]:
            if name in (b"content-length", b"transfer-encoding"):
                return False
        return True

    async def _handoff(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        actor: Principal,
        keep: tuple[str, tuple[int, int, int]] | None = None,
    ) -> None:
        """The framework answers for an authenticated caller (its limits are not applied again);
        with ``keep`` (what is copied, stamp) a 200 is copied for later requests."""
        runtime = self.runtime
        if actor.client is None and runtime is not None:
            actor = replace(actor, client=_client(runtime.verifier, scope))
        scope[AUTHENTICATED] = actor
        if keep is None:
            await self.framework(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def copying_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        flight = (keep[1], asyncio.get_running_loop().create_future())
        self._flights[keep[0]] = flight
        kept: Copy | None = None
        try:
            await self.framework(scope, receive, copying_send)
            if start is not None and start["status"] == 200:
                kept = self._keep(keep, start, b"".join(chunks))
        finally:
            flight[1].set_result(kept)
            if self._flights.get(keep[0]) is flight:
                del self._flights[keep[0]]

    def _keep(
        self, keep: tuple[str, tuple[int, int, int]], start: Message, body: bytes
    ) -> Copy | None:
        """Keep ``start`` and ``body`` when they may be served again; the copy, or None."""
        runtime = self.runtime
        if runtime is None:
            return None
        cache = runtime.verifier.cache
        key_id, stamp = keep
        if not cache.trusted or self._stamp(cache.generation) != stamp:
            return None
        # A key's credits change with every request of it: never copied (a list page is, for at
        # most RENDER_TTL, like its usage counts).
        if not key_id.startswith("?") and b'"credits":null' not in body:
            return None
        if len(self._rendered) >= MAX_RENDERED:
            self._rendered.clear()
        deadline = time.monotonic() + RENDER_TTL
        self._rendered[key_id] = (stamp, deadline, start, body)
        return start, body

    # --- shared ----------------------------------------------------------------------------------

    @staticmethod
    async def _caller(verifier: Verifier, scope: Scope) -> Principal:
        """The calling key as the Bearer layer finds it (akener.api.auth.ApiKeyAuthMiddleware)."""
        key = parse_bearer(authorization_values(scope["headers"]))
        actor = _cached_caller(verifier, key)
        if actor is not None:
            return actor
        client = _client(verifier, scope)
        verified = await verifier.verify(key, client)
        return verified.principal(client)

    async def _refuse(
        self, exc: AkenerError, scope: Scope, receive: Receive, send: Send, started: float
    ) -> None:
        answer = akener_error_response(exc)
        await answer(scope, receive, send)
        self._done(scope, answer.status_code, started)

    def _done(self, scope: Scope, status: int, started: float) -> None:
        """The access line and the metrics of an answer given here (as the framework's)."""
        if self.observe is not None:
            self.observe(scope["path"], status, time.perf_counter() - started)
        if log.isEnabledFor(logging.INFO):
            log_request(log, scope, status, started)

    @staticmethod
    async def _send_json(send: Send, body: bytes) -> None:
        headers = [(b"content-length", str(len(body)).encode("ascii")), _JSON_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
