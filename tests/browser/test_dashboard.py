"""The dashboard in headless Chromium, driven by role and label as a person would use it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import update

from akener.keys.models import ApiKey
from tests.browser.conftest import sign_in, unique
from tests.browser.live import PASSWORD, LiveServer

pytestmark = pytest.mark.browser


def whoami(server: LiveServer, key: str) -> int:
    """Status of the API's whoami for ``key``."""
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.get(f"{server.url}/api/v1/whoami", headers=headers, timeout=5).status_code


def key_row(page: Page, name: str):  # type: ignore[no-untyped-def]
    """The table row of the key called ``name``."""
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name))


def test_first_run_setup_then_sign_out_and_in(browser: Browser, fresh_server: LiveServer) -> None:
    page = browser.new_page(base_url=fresh_server.url)
    page.goto("/login")
    expect(page.get_by_text("No account exists yet")).to_be_visible()
    page.goto(fresh_server.setup_url)
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Your name").fill("Ada")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Create owner account").click()
    expect(page.get_by_role("heading", name="API Keys", exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Welcome, Ada")
    expect(page.get_by_text("No API keys yet")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(fresh_server.setup_url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()  # setup is one-time
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(
        page.get_by_role("navigation", name="Manage").get_by_role("link", name="API Keys")
    ).to_be_visible()
    page.close()


def test_create_copy_use_toggle_and_delete_without_reloading(
    page: Page, server: LiveServer
) -> None:
    name = unique("GitHub Actions")
    sign_in(page, "owner@example.com")
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Create API key").click()
    dialog = page.get_by_role("dialog", name="Create API key")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Name")).to_be_focused()
    dialog.get_by_label("Name").fill("   ")
    dialog.get_by_role("button", name="Create key").click()
    expect(dialog.get_by_role("alert")).to_have_text("Name must not be empty.")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_role("button", name="Create key").click()
    secret = dialog.get_by_label("New API key")
    expect(secret).to_have_value(re.compile(r"^akener_[0-9a-f]{64}$"))
    expect(dialog.get_by_text("It will not be shown again")).to_be_visible()
    key = secret.input_value()
    dialog.get_by_role("button", name="Copy").click()
    expect(dialog.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    assert whoami(server, key) == 200

    row = key_row(page, name)
    expect(row).to_contain_text(key[-4:])
    assert key not in page.content()
    switch = row.get_by_role("switch")
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(switch).to_have_text("Inactive")
    assert whoami(server, key) == 401
    switch.click()
    expect(switch).to_have_text("Active")
    assert whoami(server, key) == 200

    row.get_by_role("button", name="Delete").click()
    confirm = page.get_by_role("dialog", name="Delete API key")
    expect(confirm).to_contain_text(name)
    expect(confirm).to_contain_text("cannot be undone")
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(row).to_be_visible()
    row.get_by_role("button", name="Delete").click()
    confirm.get_by_role("button", name="Delete key").click()
    expect(row).to_have_count(0)
    expect(page.get_by_role("status")).to_contain_text("was deleted")
    assert whoami(server, key) == 401
    assert page.evaluate("window.notReloaded") is True


def test_html_in_a_key_name_is_shown_as_text(page: Page, server: LiveServer) -> None:
    name = unique("<script>alert('x')</script>")
    sign_in(page, "owner@example.com")
    page.get_by_role("button", name="Create API key").click()
    dialog = page.get_by_role("dialog", name="Create API key")
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_role("button", name="Create key").click()
    dialog.get_by_role("button", name="Done").click()
    page.reload()
    expect(key_row(page, name)).to_be_visible()
    assert page.locator("script", has_text="alert").count() == 0


def test_member_sees_the_list_with_every_action_disabled(page: Page, server: LiveServer) -> None:
    email = f"{unique('member').replace(' ', '')}@example.com"
    server.add_user(email, "member")
    name = unique("Monitoring Script")
    server.add_key(name)
    sign_in(page, email)
    expect(page.get_by_role("button", name="Create API key")).to_be_disabled()
    row = key_row(page, name)
    expect(row.get_by_role("switch")).to_be_disabled()
    expect(row.get_by_role("button", name="Delete")).to_be_disabled()
    expect(page.get_by_role("link", name="Users")).to_be_visible()


def test_editor_creates_and_toggles_but_cannot_delete(page: Page, server: LiveServer) -> None:
    email = f"{unique('editor').replace(' ', '')}@example.com"
    server.add_user(email, "editor")
    name = unique("Deploy Pipeline")
    sign_in(page, email)
    page.get_by_role("button", name="Create API key").click()
    dialog = page.get_by_role("dialog", name="Create API key")
    expect(dialog.get_by_label("api_keys.delete")).to_have_count(0)  # not theirs to grant
    dialog.get_by_label("Name").fill(name)
    dialog.get_by_role("button", name="Create key").click()
    dialog.get_by_role("button", name="Done").click()
    row = key_row(page, name)
    row.get_by_role("switch").click()
    expect(row.get_by_role("switch")).to_have_attribute("aria-checked", "false")
    expect(row.get_by_role("button", name="Delete")).to_be_disabled()


def test_forged_post_without_csrf_token_is_refused(page: Page, server: LiveServer) -> None:
    sign_in(page, "owner@example.com")
    name = unique("Forged")
    answer = page.request.post(f"{server.url}/manage/api-keys", form={"name": name})
    assert answer.status == 403
    assert "could not be verified" in answer.text()
    page.reload()
    expect(key_row(page, name)).to_have_count(0)


def test_without_javascript_create_toggle_and_delete_use_plain_forms(
    browser: Browser, server: LiveServer
) -> None:
    context = browser.new_context(base_url=server.url, java_script_enabled=False)
    page = context.new_page()
    name = unique("Uptime Robot Webhook")
    sign_in(page, "owner@example.com")
    page.get_by_role("button", name="Create API key").click()
    expect(page).to_have_url(re.compile(r"/manage/api-keys/new"))
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create key").click()
    panel = page.get_by_role("region", name=re.compile("Your new key"))
    expect(panel).to_contain_text("It will not be shown again")
    key = panel.get_by_label("New API key").input_value()
    assert re.fullmatch(r"akener_[0-9a-f]{64}", key)
    assert key not in page.url
    expect(panel.get_by_role("button", name="Copy")).to_be_hidden()
    assert whoami(server, key) == 200

    key_row(page, name).get_by_role("switch").click()
    expect(page.get_by_role("status")).to_contain_text("is now off (INACTIVE)")
    expect(key_row(page, name).get_by_role("switch")).to_have_attribute("aria-checked", "false")
    assert whoami(server, key) == 401
    assert key not in page.content()

    key_row(page, name).get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", name=re.compile("Delete the key"))).to_be_visible()
    expect(page.get_by_text("cannot be undone")).to_be_visible()
    page.get_by_role("button", name="Delete key").click()
    expect(page.get_by_role("status")).to_contain_text("was deleted")
    expect(key_row(page, name)).to_have_count(0)
    context.close()


def test_owner_filter_from_the_owners_page_combines_and_survives_a_reload(
    page: Page, server: LiveServer
) -> None:
    owner = unique("cust").replace(" ", "-")
    names = [unique(f"{owner} key {n}") for n in range(3)]
    ids = [server.add_key(name)[0].id for name in names]
    server.add_key(unique(f"{owner} unowned"))  # matches the name, not the owner

    async def assign(session: Any) -> None:
        await session.execute(update(ApiKey).where(ApiKey.id.in_(ids)).values(owner_id=owner))
        await session.execute(update(ApiKey).where(ApiKey.id == ids[2]).values(status="INACTIVE"))

    server.db(assign)
    sign_in(page, "owner@example.com")
    page.goto("/manage/owners")
    page.get_by_role("link", name=owner, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/manage/api-keys\?owner_id={owner}$"))
    filters = page.get_by_role("search", name="Find keys")
    expect(filters.get_by_label("Owner ID")).to_have_value(owner)
    expect(page.locator("#key-rows > tr")).to_have_count(3)
    for name in names:
        expect(key_row(page, name)).to_have_count(1)

    filters.get_by_label("Status").select_option("Active")
    filters.get_by_label("Name contains").fill("key")
    filters.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(
        re.compile(rf"owner_id={owner}.*status=ACTIVE|status=ACTIVE.*owner_id={owner}")
    )
    expect(page.locator("#key-rows > tr")).to_have_count(2)
    expect(key_row(page, names[2])).to_have_count(0)
    expect(page.get_by_text("2 keys match")).to_be_visible()
    page.reload()  # the address alone carries the filter: shareable
    expect(page.locator("#key-rows > tr")).to_have_count(2)

    filters.get_by_label("Owner ID").fill("not valid!")
    filters.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("alert")).to_contain_text("Owner_id must be 1 to 128")
    expect(page.locator("#key-rows > tr")).to_have_count(0)
