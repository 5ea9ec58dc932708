"""``AsyncAkenerClient``: ``AkenerClient``'s twin for asyncio, the same methods awaited."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Self, TypeVar

import httpx

from akener_client import _calls
from akener_client._calls import UNSET, Call, CreditsIn, TimeIn, WindowsIn
from akener_client._http import (
    DEFAULT_TIMEOUT,
    SSEParser,
    raise_for_error,
    read_answer,
    transport_error,
)
from akener_client.client import _Base
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


class AsyncAkenerClient(_Base):
    """The asynchronous twin of ``AkenerClient``: the same methods, awaited.

    Use it as an async context manager, or call ``await aclose()``.
    """

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, key, timeout)
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=self.timeout, transport=transport, follow_redirects=False
        )

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, call: Call[T]) -> T:
        try:
            response = await self._http.request(
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

    async def list_keys(
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
        return await self._run(
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

    async def iter_keys(
        self,
        *,
        status: KeyStatus | None = None,
        q: str | None = None,
        expiry: KeyExpiry | None = None,
        scope: str | None = None,
        sort: KeySort | None = None,
        owner_id: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Key]:
        """Every matching key, page after page."""
        cursor: str | None = None
        while True:
            page = await self.list_keys(
                limit=page_size,
                cursor=cursor,
                status=status,
                q=q,
                expiry=expiry,
                scope=scope,
                sort=sort,
                owner_id=owner_id,
            )
            for key in page.items:
                yield key
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def create_key(
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
        return await self._run(
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

    async def get_key(self, key_id: str) -> Key:
        """One key by id."""
        return await self._run(_calls.get_key(key_id))

    async def update_key(
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
        return await self._run(
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

    async def activate_key(self, key_id: str) -> Key:
        """Switch a key on."""
        return await self.update_key(key_id, status="ACTIVE")

    async def deactivate_key(self, key_id: str) -> Key:
        """Switch a key off: it is refused at once, everywhere."""
        return await self.update_key(key_id, status="INACTIVE")

    async def delete_key(self, key_id: str) -> None:
        """Delete a key for good."""
        await self._run(_calls.delete_key(key_id))

    async def rotate_key(self, key_id: str, *, grace_period_seconds: int = 0) -> CreatedKey:
        """Give a key a new secret (in ``.key``); the old one works for the grace period."""
        return await self._run(_calls.rotate_key(key_id, grace_period_seconds))

    async def report_leaked(self, key_id: str, *, url: str | None = None) -> Key:
        """Report a key as leaked (``url``: where it was found)."""
        return await self._run(_calls.report_leaked(key_id, url))

    async def verify_key(
        self,
        key: str,
        scopes: Iterable[str] = (),
        *,
        ip: str | None = None,
        cost: int | None = None,
    ) -> VerifyResult:
        """Ask akener whether ``key`` is good for ``scopes`` (needs ``api_keys.verify``)."""
        return await self._run(_calls.verify_key(key, scopes, ip=ip, cost=cost))

    async def whoami(self) -> Key:
        """The key this client uses."""
        return await self._run(_calls.whoami())

    async def iter_changes(self, *, last_event_id: str | None = None) -> AsyncIterator[ServerEvent]:
        """The key change stream's events, as they come (``GET /api/v1/keys/changes``).

        Resumes after ``last_event_id`` when given. Ends when the server ends the stream; a
        stream silent for 45 s raises ``AkenerTransportError``.
        """
        options = self._stream_request(last_event_id)
        try:
            async with self._http.stream("GET", "/api/v1/keys/changes", **options) as response:
                if not response.is_success:
                    raise_for_error(response, await response.aread())
                parser = SSEParser()
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
        except httpx.TransportError as exc:
            raise transport_error(exc) from None

    # --- owners ---------------------------------------------------------------------------------

    async def list_owners(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Owner]:
        """One page of owners (every owner id with keys or shared limits), by id."""
        return await self._run(_calls.list_owners(limit=limit, cursor=cursor))

    async def iter_owners(self, *, page_size: int = 100) -> AsyncIterator[Owner]:
        """Every owner, page after page."""
        cursor: str | None = None
        while True:
            page = await self.list_owners(limit=page_size, cursor=cursor)
            for owner in page.items:
                yield owner
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get_owner(self, owner_id: str) -> Owner:
        """An owner's shared limits and key count."""
        return await self._run(_calls.get_owner(owner_id))

    async def set_owner(
        self, owner_id: str, *, rate_limits: WindowsIn = (), credits: CreditsIn = None
    ) -> Owner:
        """Set an owner's whole shared limits."""
        return await self._run(_calls.set_owner(owner_id, rate_limits=rate_limits, credits=credits))

    # --- audit ----------------------------------------------------------------------------------

    async def list_audit_events(
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
        return await self._run(
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

    async def iter_audit_events(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: TimeIn = None,
        until: TimeIn = None,
        page_size: int = 200,
    ) -> AsyncIterator[AuditEvent]:
        """Every matching audit event, newest first, page after page."""
        cursor: str | None = None
        while True:
            page = await self.list_audit_events(
                limit=page_size,
                cursor=cursor,
                actor=actor,
                action=action,
                target=target,
                since=since,
                until=until,
            )
            for event in page.items:
                yield event
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # --- webhooks -------------------------------------------------------------------------------

    async def list_webhooks(self) -> list[Webhook]:
        """Every webhook endpoint, oldest first."""
        return await self._run(_calls.list_webhooks())

    async def create_webhook(
        self, url: str, events: Iterable[str], *, description: str | None = None
    ) -> WebhookWithSecret:
        """Add a webhook endpoint; its signing secret is in ``.secret``, this once."""
        return await self._run(_calls.create_webhook(url, events, description))

    async def get_webhook(self, webhook_id: str) -> Webhook:
        """One webhook endpoint."""
        return await self._run(_calls.get_webhook(webhook_id))

    async def update_webhook(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        events: Iterable[str] | None = None,
        description: str | None = None,
    ) -> Webhook:
        """Change a webhook's URL, events or description (the ones given)."""
        return await self._run(
            _calls.update_webhook(webhook_id, url=url, events=events, description=description)
        )

    async def delete_webhook(self, webhook_id: str) -> None:
        """Remove a webhook endpoint and its delivery log."""
        await self._run(_calls.delete_webhook(webhook_id))

    async def rotate_webhook_secret(
        self, webhook_id: str, *, overlap_seconds: int | None = None
    ) -> WebhookWithSecret:
        """A new signing secret (in ``.secret``); the old one also signs for the overlap."""
        return await self._run(_calls.rotate_webhook_secret(webhook_id, overlap_seconds))

    async def list_deliveries(self, webhook_id: str, *, limit: int | None = None) -> list[Delivery]:
        """A webhook's deliveries, newest first."""
        return await self._run(_calls.list_deliveries(webhook_id, limit))

    async def resend_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        """Make a delivery due again at once."""
        return await self._run(_calls.resend_delivery(webhook_id, delivery_id))
