"""Browser fixtures: headless Chromium (the Debian package) and real akener servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from sqlalchemy.engine import make_url

from akener.settings import Settings
from tests.browser.live import CHROMIUM_ARGS, PASSWORD, LiveServer, run_async
from tests.conftest import PG_URL, _admin

CHROMIUM = "/usr/bin/chromium"
expect.set_options(timeout=5_000)


# Package scope, not session: Playwright's sync API keeps its event loop marked as running in
# this thread while it is open, and the rest of the suite needs asyncio.run() afterwards.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the browser tests."""
    if not Path(CHROMIUM).exists():
        # CI must never pass by skipping them; a local run of pytest alone may.
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed (scripts/system-deps installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _server(root: Path) -> LiveServer:
    return LiveServer(root=root, database_url=f"sqlite+aiosqlite:///{root / 'akener.db'}")


BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(scope="package", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server shared by the tests that do not need an empty database; it has an owner.

    Every test using it runs on SQLite, and on PostgreSQL when AKENER_TEST_DATABASE_URL is set.
    """
    yield from serve(request.param, tmp_path_factory.mktemp("live"), "akener_browser")


def serve(
    backend: str, root: Path, database: str, env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    """A running server with an owner, on SQLite or on a PostgreSQL database of its own."""
    if backend == "sqlite":
        live = _server(root)
        live.env = env or {}
        yield from _run(live)
        return
    base = make_url(Settings(database_url=PG_URL, _env_file=None).database_url)  # type: ignore[call-arg]
    name = f"{database}_{os.getpid()}"
    admin = base.set(database="postgres").render_as_string(hide_password=False)
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    run_async(lambda: _admin(admin, drop, f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    yield from _run(LiveServer(root=root, database_url=url, env=env or {}))
    run_async(lambda: _admin(admin, drop))


def _run(live: LiveServer) -> Iterator[LiveServer]:
    live.start()
    try:
        live.add_user("owner@example.com", "admin", owner=True)
        yield live
    finally:
        live.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server on an empty database (no users yet)."""
    live = _server(tmp_path).start()
    yield live
    live.stop()


@pytest.fixture
def context(browser: Browser, server: LiveServer) -> Iterator[BrowserContext]:
    """A fresh browser profile (cookies, clipboard permission) per test."""
    ctx = browser.new_context(base_url=server.url)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab in the test's profile."""
    return context.new_page()


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix} {uuid.uuid4().hex[:6]}"


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Sign in through the form, as a person would, and land on the keys page."""
    page.goto("/login?next=/manage/api-keys")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="API Keys", exact=True)).to_be_visible()
