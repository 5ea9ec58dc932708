"""Reading Server-Sent Events from an httpx streaming response, with a bound on every wait."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Event:
    """One event as a client sees it."""

    event: str
    data: dict[str, Any]
    id: str | None


@dataclass
class SseReader:
    """Events of one open stream; ``raw`` keeps every line received (to search for secrets)."""

    response: httpx.Response
    raw: list[str] = field(default_factory=list)
    last_id: str | None = None

    def __post_init__(self) -> None:
        self._lines: AsyncIterator[str] = self.response.aiter_lines()

    async def next(self, within: float = 5.0) -> Event | None:
        """The next event; None when the stream ended; fails after ``within`` seconds."""
        return await asyncio.wait_for(self._next(), within)

    async def _next(self) -> Event | None:
        name, data, ident = "message", "", None
        async for line in self._lines:
            self.raw.append(line)
            if line == "":
                if data:
                    if ident is not None:
                        self.last_id = ident
                    return Event(name, json.loads(data), ident)
                name, data, ident = "message", "", None
                continue
            field_, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field_ == "event":
                name = value
            elif field_ == "data":
                data += value
            elif field_ == "id":
                ident = value
        return None

    async def until(self, wanted: str, within: float = 5.0, skip: tuple[str, ...] = ()) -> Event:
        """Skip heartbeats (and events named in ``skip``) until an event named ``wanted``."""
        while True:
            event = await self.next(within)
            assert event is not None, f"the stream ended before {wanted!r}"
            if event.event == wanted:
                return event
            assert event.event in ("heartbeat", *skip), f"expected {wanted!r}, got {event}"
