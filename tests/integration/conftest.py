"""Fixtures for tests that need time to pass: the app on a FakeClock, and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from akener.app import AkenerApp
from akener.runtime import Runtime
from akener.settings import Settings
from tests.factories import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves; the app's checks and pages read it as "now"."""
    return FakeClock()


@pytest.fixture
async def clocked_app(settings: Settings, clock: FakeClock) -> AsyncIterator[AkenerApp]:
    """A started app whose clock is ``clock`` (dashboard sign-in sessions still use real time)."""
    app = AkenerApp(settings, clock=clock)
    async with app.running():
        yield app


@pytest.fixture
async def web(clocked_app: AkenerApp) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for ``clocked_app``."""
    transport = httpx.ASGITransport(app=clocked_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as client:
        yield client


@pytest.fixture
def rt(clocked_app: AkenerApp) -> Runtime:
    """The runtime of ``clocked_app``."""
    return clocked_app.runtime


@pytest.fixture
def timed(clocked_app: AkenerApp, web: httpx.AsyncClient) -> tuple[AkenerApp, httpx.AsyncClient]:
    """``clocked_app`` and its client together."""
    return clocked_app, web
