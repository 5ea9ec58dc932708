"""/docs and /redoc work with no network beyond this machine, under their CSP."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

pytestmark = pytest.mark.browser
LOCAL = ("127.0.0.1", "localhost")


@pytest.fixture
def offline(context: BrowserContext) -> list[str]:
    """Every request off this machine is aborted and recorded; CSP violations are recorded."""
    refused: list[str] = []

    def guard(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    context.route("**/*", guard)
    return refused


def _watch_csp(page: Page) -> list[str]:
    """CSP refusals of this page's own scripts and styles (ReDoc's off-site logo is refused too,
    as it should be: that one is not recorded)."""
    violations: list[str] = []

    def note(text: str) -> None:
        if "Content Security Policy" in text and "https://cdn.redoc.ly/" not in text:
            violations.append(text)

    page.on("console", lambda m: note(m.text))
    return violations


def test_swagger_ui_loads_offline_with_an_authorize_button(page: Page, offline: list[str]) -> None:
    violations = _watch_csp(page)
    answer = page.goto("/docs")
    assert (
        answer is not None and "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    )
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    expect(page.get_by_text("/api/v1/keys", exact=True).first).to_be_visible()
    page.get_by_role("button", name="Authorize").click()
    expect(page.get_by_text("bearerAuth")).to_be_visible()
    assert offline == [] and violations == []


def test_redoc_loads_offline(page: Page, offline: list[str]) -> None:
    violations = _watch_csp(page)
    answer = page.goto("/redoc")
    assert (
        answer is not None and "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    )
    expect(page.get_by_role("heading", name="Create Key").first).to_be_visible()
    assert offline == [] and violations == []
