"""GET /api/v1/keys/changes: key changes as Server-Sent Events (docs/verification.md).

The route checks the caller, opens a subscription on the process's change feed and streams it.
The stream ends when the caller's own key stops being valid (switched off, expired, deleted,
or no longer holding ``api_keys.verify``), when akener shuts down, or when the change log
cannot be read.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from starlette.responses import StreamingResponse

from akener.accounts.permissions import API_KEYS_VERIFY, Principal
from akener.api.deps import get_principal, get_runtime
from akener.api.errors import responses
from akener.errors import ServiceUnavailable
from akener.events.feed import ChangeFeed, Subscription, subscribe_changes
from akener.runtime import Runtime
from akener.verify.bearer import authorization_values, parse_bearer
from akener.verify.cache import CachedKey
from akener.verify.service import Verdict, Verifier, judge

router = APIRouter(prefix="/api/v1", tags=["verify"])
HEADERS = {
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}


def sse(event: str, data: dict[str, Any], cursor: str | None = None) -> bytes:
    """One Server-Sent Event."""
    head = f"event: {event}\n" + (f"id: {cursor}\n" if cursor else "")
    return (head + f"data: {json.dumps(data, separators=(',', ':'))}\n\n").encode()


@router.get(
    "/keys/changes",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **responses(401, 403, 503)},
)
async def changes(
    request: Request,
    actor: Annotated[Principal, Depends(get_principal)],
    runtime: Annotated[Runtime, Depends(get_runtime)],
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
) -> StreamingResponse:
    """Key changes as Server-Sent Events: ``ready`` once in sync, ``change`` per changed key
    (its id and what changed, never a secret), ``heartbeat`` every 15 s, ``reset`` when the
    cursor in ``Last-Event-ID`` is too old or unknown. Needs ``api_keys.verify``."""
    sub = await subscribe_changes(runtime.feed, actor, last_event_id)
    key = parse_bearer(authorization_values(request.scope["headers"]))
    try:
        entry = await runtime.verifier.reread(key)
    except BaseException:
        runtime.feed.unsubscribe(sub)
        raise
    body = _stream(runtime.feed, sub, runtime.verifier, key, entry, runtime.settings)
    return StreamingResponse(body, media_type="text/event-stream", headers=HEADERS)


def _still_valid(entry: CachedKey | None, now: float) -> bool:
    return (
        entry is not None and judge(entry, now) is Verdict.VALID and API_KEYS_VERIFY in entry.scopes
    )


async def _stream(
    feed: ChangeFeed,
    sub: Subscription,
    verifier: Verifier,
    key: str,
    entry: CachedKey | None,
    settings: Any,
) -> AsyncIterator[bytes]:
    heartbeat = settings.changes_heartbeat_seconds
    try:
        if not _still_valid(entry, verifier.now()):
            yield sse("end", {"reason": "key no longer valid"})
            return
        yield b"retry: 1000\n\n"
        if sub.reset_reason is not None:
            yield sse("reset", {"reason": sub.reset_reason}, sub.ready_cursor)
        for change in sub.backlog:
            yield sse("change", change.as_json())
        yield sse("ready", {"heartbeat_seconds": heartbeat}, sub.ready_cursor)
        beat = time.monotonic() + heartbeat
        while True:
            wait = beat - time.monotonic()
            if entry is not None and entry.expires_at is not None:
                wait = min(wait, entry.expires_at - verifier.now())
            item = await sub.next(max(0.0, wait))
            if item is None:
                if not _still_valid(entry, verifier.now()):
                    yield sse("end", {"reason": "key no longer valid"})
                    return
                if time.monotonic() >= beat:
                    yield sse("heartbeat", {}, feed.cursor() if sub.queue.empty() else None)
                    beat = time.monotonic() + heartbeat
            elif item.kind == "end":
                yield sse("end", {"reason": item.reason})
                return
            elif item.kind == "own":
                try:
                    entry = await verifier.reread(key)
                except ServiceUnavailable:
                    yield sse("end", {"reason": "unavailable"})
                    return
                if not _still_valid(entry, verifier.now()):
                    yield sse("end", {"reason": "key no longer valid"})
                    return
            elif item.kind == "reset":
                yield sse("reset", {"reason": item.reason}, item.cursor)
            elif item.change is not None and item.change.event_id not in sub.replayed:
                yield sse("change", item.change.as_json(), item.cursor)
    finally:
        feed.unsubscribe(sub)
