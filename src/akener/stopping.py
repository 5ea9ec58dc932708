"""Ending long responses when the server is asked to stop.

HTTP servers stop gracefully: on SIGTERM or SIGINT they stop accepting, wait for every response
in flight to finish, and only then run the application's shutdown. A change stream never
finishes by itself, so without help a stopping server would wait for it forever. This adds a
step in front of the server's own signal handling: end the streams, then let the server do
what it always does. Both ways servers install handlers are covered: asyncio's
``loop.add_signal_handler`` (granian) and ``signal.signal`` (uvicorn).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def before_server_stops(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` on the event loop when a stop signal arrives, before the server's own
    handler; returns a function that puts the previous handlers back."""
    loop = asyncio.get_running_loop()
    undo: list[Callable[[], None]] = []
    for sig in STOP_SIGNALS:
        handle: Any = getattr(loop, "_signal_handlers", {}).get(sig)
        if handle is not None:
            undo.append(_chain_loop(loop, sig, handle, callback))
            continue
        previous = signal.getsignal(sig)
        if callable(previous):
            undo.append(_chain_signal(loop, sig, previous, callback))

    def restore() -> None:
        for step in undo:
            step()

    return restore


def _chain_loop(
    loop: asyncio.AbstractEventLoop, sig: int, handle: Any, callback: Callable[[], None]
) -> Callable[[], None]:
    def chained() -> None:
        callback()
        handle._callback(*handle._args)

    loop.add_signal_handler(sig, chained)
    return lambda: loop.add_signal_handler(sig, handle._callback, *handle._args)


def _chain_signal(
    loop: asyncio.AbstractEventLoop,
    sig: int,
    previous: Callable[[int, FrameType | None], Any],
    callback: Callable[[], None],
) -> Callable[[], None]:
    def chained(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback)  # a signal handler must not touch the loop itself
        previous(signum, frame)

    signal.signal(sig, chained)

    def restore() -> None:
        signal.signal(sig, previous)

    return restore
