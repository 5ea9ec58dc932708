"""Manage → Webhooks in Chromium: add, the secret once, deliveries, resend, delete (issue 11)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from akener.accounts.models import Role
from akener.events.models import WebhookEndpoint
from tests.browser.conftest import BACKENDS, serve, unique
from tests.browser.live import PASSWORD, LiveServer
from tests.receivers import Receiver

pytestmark = pytest.mark.browser
SECRET_RE = re.compile(r"^whsec_[A-Za-z0-9+/=]{20,}$")
ANY = ("minor", "moderate", "serious", "critical")


@pytest.fixture(scope="module", params=BACKENDS)
def hooks_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server that may deliver to this machine's loopback receivers, polling often."""
    env = {"AKENER_WEBHOOKS_ALLOW_PRIVATE": "true", "AKENER_WEBHOOKS_POLL_SECONDS": "0.2"}
    yield from serve(request.param, tmp_path_factory.mktemp("hooks"), "akener_hooks", env)


def _sign_in(browser: Browser, live: LiveServer, email: str, **options: Any) -> Page:
    page = browser.new_page(base_url=live.url, **options)
    page.goto("/login?next=/manage/webhooks")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    return page


def _violations(page: Page) -> list[str]:
    """Every axe-core violation, whatever its impact (on a page with JavaScript on: axe runs
    in the page, and evaluating in a page without JavaScript never returns)."""
    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in found]


def _add(page: Page, url: str, description: str) -> str:
    """Add an endpoint for key.created through the form; returns its signing secret."""
    page.goto("/manage/webhooks")
    page.get_by_label("URL").fill(url)
    page.get_by_label("key.created").check()
    page.get_by_label("Description").fill(description)
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_role("heading", name="Signing secret")).to_be_visible()
    secret = page.get_by_role("textbox", name="Signing secret")
    expect(secret).to_have_value(SECRET_RE)
    return secret.input_value()


def _reload_until(page: Page, text: str, seconds: float = 15.0) -> None:
    """Reload the page until ``text`` shows (the sender works in the background)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        page.reload()
        if page.get_by_text(text).count():
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"{text!r} never appeared:\n{page.inner_text('main')}")


def test_add_secret_once_deliveries_resend_and_delete_through_the_dialog(
    browser: Browser, hooks_server: LiveServer
) -> None:
    live = hooks_server
    page = _sign_in(browser, live, "owner@example.com")
    found: dict[str, list[str]] = {"list": _violations(page)}
    with Receiver(status=500) as receiver:
        description = unique("Billing listener")
        answers: list[Any] = []
        page.on("response", lambda r: answers.append(r) if r.request.method == "POST" else None)
        secret = _add(page, receiver.url, description)
        created = [r for r in answers if r.url.endswith("/manage/webhooks")][-1]
        assert created.headers["cache-control"] == "no-store"
        found["secret shown"] = _violations(page)
        page.get_by_role("link", name="Webhooks").first.click()
        row = page.get_by_role("row").filter(has_text=description)
        expect(row).to_have_count(1)
        assert secret not in page.content()
        row.get_by_role("link", name=receiver.url).click()
        assert secret not in page.content()  # never again: not on its page either
        hook_page = page.url

        key_name = unique("Announced key")
        live.add_key(key_name)
        _reload_until(page, "HTTP 500")
        payloads = receiver.verified(secret)  # signed per Standard Webhooks, with this secret
        assert payloads[0]["type"] == "key.created"
        assert payloads[0]["data"]["key"]["name"] == key_name  # type: ignore[index]
        found["deliveries"] = _violations(page)

        receiver.status = 200
        page.get_by_role("button", name="Resend").first.click()
        expect(page.get_by_role("status")).to_contain_text("sent again")
        _reload_until(page, "delivered")
        assert len(receiver.verified(secret)) >= 2

        delete = page.get_by_role("button", name="Delete webhook")
        delete.click()
        dialog = page.get_by_role("dialog", name="Are you sure?")
        expect(dialog).to_contain_text(receiver.url)
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        found["delete dialog"] = _violations(page)
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_be_hidden()
        expect(delete).to_be_focused()
        page.goto(hook_page + "/delete")  # the page JavaScript-less browsers get instead
        expect(page.get_by_role("heading", name="Delete this webhook?")).to_be_visible()
        found["delete page"] = _violations(page)  # (axe needs JavaScript: checked here)
        page.get_by_role("link", name="Cancel").click()
        expect(page.get_by_role("heading", name=receiver.url)).to_be_visible()  # still there

        page.get_by_role("button", name="Delete webhook").click()
        dialog.get_by_role("button", name="Delete").click()
        expect(page.get_by_role("status")).to_contain_text("The webhook was deleted.")
        expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
        expect(page.get_by_role("row").filter(has_text=description)).to_have_count(0)
        gone = page.goto(hook_page)
        assert gone is not None and gone.status == 404
    page.close()
    assert {name: v for name, v in found.items() if v} == {}


def test_without_javascript_delete_asks_on_a_page_of_its_own(
    browser: Browser, hooks_server: LiveServer
) -> None:
    page = _sign_in(browser, hooks_server, "owner@example.com", java_script_enabled=False)
    url = f"https://receiver.example.com/{unique('no-js').replace(' ', '-')}"
    _add(page, url, "")
    page.goto("/manage/webhooks")
    page.get_by_role("link", name=url).click()
    hook_page = page.url
    page.get_by_role("button", name="Delete webhook").click()
    expect(page.get_by_role("heading", name="Delete this webhook?")).to_be_visible()
    expect(page.get_by_text(url)).to_be_visible()
    assert page.url.rstrip("?") == hook_page + "/delete"
    page.get_by_role("link", name="Cancel").click()
    assert page.url == hook_page  # nothing was deleted
    page.get_by_role("button", name="Delete webhook").click()
    page.get_by_role("button", name="Delete webhook").click()
    expect(page.get_by_role("status")).to_contain_text("The webhook was deleted.")
    expect(page.get_by_role("link", name=url)).to_have_count(0)
    page.close()


async def _watcher_role(session: Any) -> None:
    session.add(Role(name="Webhook watcher", description="", builtin=False,
                     permissions=["webhooks.read"]))  # fmt: skip


async def _hook_urls(session: Any) -> list[str]:
    return list((await session.scalars(select(WebhookEndpoint.url))).all())


def test_read_only_sees_no_write_controls_and_the_server_refuses_the_forms(
    browser: Browser, hooks_server: LiveServer, tmp_path: Path
) -> None:
    live = hooks_server
    owner = _sign_in(browser, live, "owner@example.com")
    url = f"https://receiver.example.com/{unique('watched').replace(' ', '-')}"
    _add(owner, url, "watched")
    owner.close()
    live.db(_watcher_role)
    email = f"{unique('watcher').replace(' ', '-')}@example.com"
    live.add_user(email, "Webhook watcher")

    page = _sign_in(browser, live, email)
    found = {"list": _violations(page)}
    expect(page.get_by_role("button", name="Add webhook")).to_have_count(0)
    expect(page.get_by_label("URL")).to_have_count(0)
    expect(page.get_by_text("Adding a webhook needs the webhooks.write permission")).to_be_visible()
    page.get_by_role("link", name=url).click()
    hook_page = page.url
    found["endpoint"] = _violations(page)
    for name in ("Delete webhook", "Save changes", "Resend"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_role("heading", name="Change")).to_have_count(0)
    expect(page.get_by_text("needs the webhooks.write permission")).to_be_visible()

    # The forms a writer would see, posted anyway with this session's own CSRF token.
    token = page.locator("input[name=csrf_token]").first.input_value()
    hook_id = hook_page.rsplit("/", 1)[1]
    attempts = {
        "/manage/webhooks": {"url": "https://evil.example.com/", "events": "key.created"},
        f"/manage/webhooks/{hook_id}": {"url": "https://evil.example.com/", "events": "key.leaked"},
        f"/manage/webhooks/{hook_id}/delete": {},
        f"/manage/webhooks/{hook_id}/deliveries/{'0' * 32}/resend": {},
    }
    for path, fields in attempts.items():
        answer = page.request.post(path, form={"csrf_token": token, **fields}, max_redirects=0)
        assert answer.status == 403, (path, answer.status)
        assert "webhooks.write" in answer.text()
    assert url in live.db(_hook_urls) and "https://evil.example.com/" not in live.db(_hook_urls)
    page.close()
    assert {name: v for name, v in found.items() if v} == {}
