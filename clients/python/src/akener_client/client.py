"""``AkenerClient``: every ``/api/v1`` operation of akener (``AsyncAkenerClient`` is its
asyncio twin, in ``async_client``).

Both send ``Authorization: Bearer <key>`` on every request, never follow redirects (the key
stays with the host it was given for), time out (10 s by default), raise an ``AkenerError`` for
every failure, and keep the key out of their ``repr`` and of every message they produce.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from akener_client import _calls
from akener_client._calls import UNSET, Call, CreditsIn, TimeIn, WindowsIn
from akener_client._http import (
    DEFAULT_TIMEOUT,
    USER_AGENT,
    SSEParser,
    base_url,
    bearer,
    raise_for_error,
    read_answer,
    transport_error,
)
from akener_client.models import (
    AuditEvent,
    CreatedKey,
    Delivery,
    Key,
    KeyExpiry,
    KeySort,
    KeyStatus,
    Owner,
    Page,
    ServerEvent,
    VerifyResult,
    Webhook,
    WebhookWithSecret,
)

T = TypeVar("T")

# A change stream sends a heartbeat every 15 s; three missed ones mean the stream is dead.
STREAM_READ_TIMEOUT = 45.0


class _Base:
    """Settings both clients share."""

    def __init__(self, url: str, key: str, timeout: float | httpx.Timeout) -> None:
        self.url = base_url(url)
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._headers = {
            "Authorization": bearer(key),
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r})"

    def _stream_request(self, last_event_id: str | None) -> dict[str, Any]:
        headers = {**self._headers, "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(self.timeout.connect, read=STREAM_READ_TIMEOUT)
        return {"headers": headers, "timeout": timeout}


class AkenerClient(_Base):
    """A synchronous client: ``AkenerClient("https://akener.example.com", "akener_…")``.

    Use it as a context manager, or call ``close()``. ``transport`` replaces httpx's network
    transport (for tests, proxies, retries).
    """

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, key, timeout)
        self._http = httpx.Client(
            base_url=self.url, timeout=self.timeout, transport=transport, follow_redirects=False
        )

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        try:
            response = self._http.request(
                call.method,
                call.path,
                params=call.params,
                json=call.body if call.has_body else None,
                headers=self._headers,
            )
        except httpx.TransportError as exc:
            raise transport_error(exc) from None
        return read_answer(response, call.parse)

    # --- keys -----------------------------------------------------------------------------------

    def list_keys(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        status: KeyStatus | None = None,
        q: str | None = None,
        expiry: KeyExpiry | None = None,
        scope: str | None = None,
        sort: KeySort | None = None,
        owner_id: str | None = None,
    ) -> Page[Key]:
        """One page of keys (newest first unless ``sort`` says otherwise)."""
        return self._run(
            _calls.list_keys(
                limit=limit,
                cursor=cursor,
                status=status,
                q=q,
                expiry=expiry,
                scope=scope,
                sort=sort,
                owner_id=owner_id,
            )
        )

    def iter_keys(
        self,
        *,
        status: KeyStatus | None = None,
        q: str | None = None,
        expiry: KeyExpiry | None = None,
        scope: str | None = None,
        sort: KeySort | None = None,
        owner_id: str | None = None,
        page_size: int = 100,
    ) -> Iterator[Key]:
        """Every matching key, page after page."""
        cursor: str | None = None
        while True:
            page = self.list_keys(
                limit=page_size,
                cursor=cursor,
                status=status,
                q=q,
                expiry=expiry,
                scope=scope,
                sort=sort,
                owner_id=owner_id,
            )
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def create_key(
        self,
        name: str,
        scopes: Iterable[str] = (),
        *,
        expires_at: TimeIn = None,
        owner_id: str | None = None,
        rate_limits: WindowsIn | None = None,
        credits: CreditsIn = None,
        allowed_ips: Iterable[str] | None = None,
    ) -> CreatedKey:
        """Create a key; its plaintext is in ``.key``, this once."""
        return self._run(
            _calls.create_key(
                name,
                scopes,
                expires_at=expires_at,
                owner_id=owner_id,
                rate_limits=rate_limits,
                credits=credits,
                allowed_ips=allowed_ips,
            )
        )

    def get_key(self, key_id: str) -> Key:
        """One key by id."""
        return self._run(_calls.get_key(key_id))

    def update_key(
        self,
        key_id: str,
        *,
        status: KeyStatus = UNSET,
        name: str = UNSET,
        expires_at: TimeIn = UNSET,
        scopes: Iterable[str] = UNSET,
        owner_id: str | None = UNSET,
        rate_limits: WindowsIn | None = UNSET,
        credits: CreditsIn = UNSET,
        allowed_ips: Iterable[str] | None = UNSET,
    ) -> Key:
        """Change the fields given (``None`` clears expiry, owner, limits); others stay."""
        return self._run(
            _calls.update_key(
                key_id,
                status=status,
                name=name,
                expires_at=expires_at,
                scopes=scopes,
                owner_id=owner_id,
                rate_limits=rate_limits,
                credits=credits,
                allowed_ips=allowed_ips,
            )
        )

    def activate_key(self, key_id: str) -> Key:
        """Switch a key on."""
        return self.update_key(key_id, status="ACTIVE")

    def deactivate_key(self, key_id: str) -> Key:
        """Switch a key off: it is refused at once, everywhere."""
        return self.update_key(key_id, status="INACTIVE")

    def delete_key(self, key_id: str) -> None:
        """Delete a key for good."""
        self._run(_calls.delete_key(key_id))

    def rotate_key(self, key_id: str, *, grace_period_seconds: int = 0) -> CreatedKey:
        """Give a key a new secret (in ``.key``); the old one works for the grace period."""
        return self._run(_calls.rotate_key(key_id, grace_period_seconds))

    def report_leaked(self, key_id: str, *, url: str | None = None) -> Key:
        """Report a key as leaked (``url``: where it was found)."""
        return self._run(_calls.report_leaked(key_id, url))

    def verify_key(
        self,
        key: str,
        scopes: Iterable[str] = (),
        *,
        ip: str | None = None,
        cost: int | None = None,
    ) -> VerifyResult:
        """Ask akener whether ``key`` is good for ``scopes`` (needs ``api_keys.verify``)."""
        return self._run(_calls.verify_key(key, scopes, ip=ip, cost=cost))

    def whoami(self) -> Key:
        """The key this client uses."""
        return self._run(_calls.whoami())

    def iter_changes(self, *, last_event_id: str | None = None) -> Iterator[ServerEvent]:
        """The key change stream's events, as they come (``GET /api/v1/keys/changes``).

        Resumes after ``last_event_id`` when given. Ends when the server ends the stream; a
        stream silent for 45 s raises ``AkenerTransportError``.
        """
        options = self._stream_request(last_event_id)
        try:
            with self._http.stream("GET", "/api/v1/keys/changes", **options) as response:
                if not response.is_success:
                    raise_for_error(response, response.read())
                parser = SSEParser()
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
        except httpx.TransportError as exc:
            raise transport_error(exc) from None

    # --- owners ---------------------------------------------------------------------------------

    def list_owners(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Owner]:
        """One page of owners (every owner id with keys or shared limits), by id."""
        return self._run(_calls.list_owners(limit=limit, cursor=cursor))

    def iter_owners(self, *, page_size: int = 100) -> Iterator[Owner]:
        """Every owner, page after page."""
        cursor: str | None = None
        while True:
            page = self.list_owners(limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_owner(self, owner_id: str) -> Owner:
        """An owner's shared limits and key count."""
        return self._run(_calls.get_owner(owner_id))

    def set_owner(
        self, owner_id: str, *, rate_limits: WindowsIn = (), credits: CreditsIn = None
    ) -> Owner:
        """Set an owner's whole shared limits."""
        return self._run(_calls.set_owner(owner_id, rate_limits=rate_limits, credits=credits))

    # --- audit ----------------------------------------------------------------------------------

    def list_audit_events(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: TimeIn = None,
        until: TimeIn = None,
    ) -> Page[AuditEvent]:
        """One page of the audit log, newest first."""
        return self._run(
            _calls.list_audit_events(
                limit=limit,
                cursor=cursor,
                actor=actor,
                action=action,
                target=target,
                since=since,
                until=until,
            )
        )

    def iter_audit_events(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: TimeIn = None,
        until: TimeIn = None,
        page_size: int = 200,
    ) -> Iterator[AuditEvent]:
        """Every matching audit event, newest first, page after page."""
        cursor: str | None = None
        while True:
            page = self.list_audit_events(
                limit=page_size,
                cursor=cursor,
                actor=actor,
                action=action,
                target=target,
                since=since,
                until=until,
            )
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # --- webhooks -------------------------------------------------------------------------------

    def list_webhooks(self) -> list[Webhook]:
        """Every webhook endpoint, oldest first."""
        return self._run(_calls.list_webhooks())

    def create_webhook(
        self, url: str, events: Iterable[str], *, description: str | None = None
    ) -> WebhookWithSecret:
        """Add a webhook endpoint; its signing secret is in ``.secret``, this once."""
        return self._run(_calls.create_webhook(url, events, description))

    def get_webhook(self, webhook_id: str) -> Webhook:
        """One webhook endpoint."""
        return self._run(_calls.get_webhook(webhook_id))

    def update_webhook(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        events: Iterable[str] | None = None,
        description: str | None = None,
    ) -> Webhook:
        """Change a webhook's URL, events or description (the ones given)."""
        return self._run(
            _calls.update_webhook(webhook_id, url=url, events=events, description=description)
        )

    def delete_webhook(self, webhook_id: str) -> None:
        """Remove a webhook endpoint and its delivery log."""
        self._run(_calls.delete_webhook(webhook_id))

    def rotate_webhook_secret(
        self, webhook_id: str, *, overlap_seconds: int | None = None
    ) -> WebhookWithSecret:
        """A new signing secret (in ``.secret``); the old one also signs for the overlap."""
        return self._run(_calls.rotate_webhook_secret(webhook_id, overlap_seconds))

    def list_deliveries(self, webhook_id: str, *, limit: int | None = None) -> list[Delivery]:
        """A webhook's deliveries, newest first."""
        return self._run(_calls.list_deliveries(webhook_id, limit))

    def resend_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        """Make a delivery due again at once."""
        return self._run(_calls.resend_delivery(webhook_id, delivery_id))
