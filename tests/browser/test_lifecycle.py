"""Rotation, the audit log and deactivate-first delete, in headless Chromium."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import sign_in, unique
from tests.browser.live import LiveServer

pytestmark = pytest.mark.browser
KEY_RE = re.compile(r"^akener_[0-9a-f]{64}$")


def whoami(server: LiveServer, key: str) -> int:
    """Status of the API's whoami for ``key``."""
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.get(f"{server.url}/api/v1/whoami", headers=headers, timeout=5).status_code


def key_row(page: Page, name: str):  # type: ignore[no-untyped-def]
    """The table row of the key called ``name``."""
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name))


def test_rotate_shows_the_new_key_once_and_the_grace_period_rules_the_old_one(
    page: Page, server: LiveServer
) -> None:
    name = unique("Deploy Pipeline")
    _, first = server.add_key(name)
    sign_in(page, "owner@example.com")
    key_row(page, name).get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    expect(page.get_by_text("No requests in the last 30 days.")).to_be_visible()
    expect(
        page.get_by_role("img", name=re.compile(r"^\d{4}-\d\d-\d\d: 0 requests$"))
    ).to_have_count(30)

    page.get_by_label("Old secret keeps working").select_option(label="1 hour")
    page.get_by_role("button", name="Rotate key").click()
    panel = page.get_by_role("region", name=re.compile("The new secret"))
    expect(panel).to_contain_text("It will not be shown again")
    expect(panel).to_contain_text("The previous secret keeps working until")
    second = panel.get_by_label("New API key").input_value()
    assert KEY_RE.match(second) and second != first and second not in page.url
    panel.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == second
    assert whoami(server, first) == 200  # the grace period runs
    assert whoami(server, second) == 200

    page.goto(page.url.removesuffix("/rotate"))  # the key's page again, by GET
    expect(page.get_by_text("The previous secret is still valid until")).to_be_visible()
    expect(page.get_by_role("region", name=re.compile("The new secret"))).to_have_count(0)
    assert second not in page.content()

    page.get_by_label("Old secret keeps working").select_option(
        label="None: the old secret stops working immediately"
    )
    page.get_by_role("button", name="Rotate key").click()
    third = page.get_by_label("New API key").input_value()
    expect(page.get_by_text("The previous secret stopped working immediately.")).to_be_visible()
    assert whoami(server, second) == 401  # grace 0: refused at once
    assert whoami(server, first) == 401  # a new rotation ends the older grace period too
    assert whoami(server, third) == 200


def test_audit_log_shows_what_was_just_done(page: Page, server: LiveServer) -> None:
    name = unique("Nightly Backup")
    sign_in(page, "owner@example.com")
    page.get_by_role("button", name="Create API key").click()
    dialog = page.get_by_role("dialog", name="Create API key")
    dialog.get_by_label("Name").fill(name)
    date_input = dialog.get_by_label("Expiry date")
    expect(date_input).to_be_hidden()  # only for "On a date…"
    dialog.get_by_label("Expires").select_option(label="On a date…")
    expect(date_input).to_be_visible()
    dialog.get_by_label("Expires").select_option(label="In 7 days")
    expect(date_input).to_be_hidden()
    dialog.get_by_role("button", name="Create key").click()
    dialog.get_by_role("button", name="Done").click()
    row = key_row(page, name)
    expect(row).to_contain_text(re.compile(r"in [67] days"))
    row.get_by_role("switch").click()
    expect(row.get_by_role("switch")).to_have_attribute("aria-checked", "false")
    row.get_by_role("switch").click()
    expect(row.get_by_role("switch")).to_have_attribute("aria-checked", "true")

    row.get_by_role("link", name=name).click()
    key_id = page.url.rsplit("/", 1)[1]
    page.get_by_role("button", name="Rotate key").click()
    expect(page.get_by_label("New API key")).to_have_value(KEY_RE)
    page.get_by_role("button", name="Delete key…").click()
    expect(page.get_by_role("button", name="Deactivate instead")).to_be_visible()
    page.get_by_role("button", name="Delete key").click()
    expect(page.get_by_role("status")).to_contain_text("was deleted")

    page.get_by_role("navigation", name="Manage").get_by_role("link", name="Audit log").click()
    page.get_by_label("Target").fill(key_id)
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_role("table").get_by_role("row")
    expect(rows).to_have_count(6)  # the header and five events
    expected = ["Key deleted", "Key rotated", "Key activated", "Key deactivated", "Key created"]
    for index, action in enumerate(expected, start=1):
        expect(rows.nth(index)).to_contain_text(action)
        expect(rows.nth(index)).to_contain_text("owner@example.com")
        expect(rows.nth(index)).to_contain_text(name)
    expect(rows.nth(5)).to_contain_text("expires_at")  # the creation recorded the expiry


def test_delete_dialog_of_an_active_key_offers_deactivate_instead(
    browser: Browser, page: Page, server: LiveServer
) -> None:
    name, other = unique("Uptime Robot Webhook"), unique("Monitoring Script")
    _, key = server.add_key(name)
    _, other_key = server.add_key(other)
    sign_in(page, "owner@example.com")
    row = key_row(page, name)
    row.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete API key")
    expect(dialog).to_contain_text("Not sure? Deactivate it instead.")
    dialog.get_by_role("button", name="Deactivate instead").click()
    expect(dialog).to_be_hidden()
    expect(row.get_by_role("switch")).to_have_attribute("aria-checked", "false")
    expect(page.get_by_role("status")).to_contain_text("is now off (INACTIVE)")
    assert whoami(server, key) == 401
    row.get_by_role("button", name="Delete").click()  # now inactive: nothing to suggest
    expect(dialog.get_by_role("button", name="Delete key")).to_be_visible()
    expect(dialog.get_by_role("button", name="Deactivate instead")).to_be_hidden()
    dialog.get_by_role("button", name="Cancel").click()
    expect(row).to_be_visible()

    plain = browser.new_context(base_url=server.url, java_script_enabled=False)
    tab = plain.new_page()
    sign_in(tab, "owner@example.com")
    key_row(tab, other).get_by_role("button", name="Delete").click()
    expect(tab.get_by_text("Not sure? Deactivate it instead.")).to_be_visible()
    tab.get_by_role("button", name="Deactivate instead").click()
    expect(tab.get_by_role("status")).to_contain_text("is now off (INACTIVE)")
    expect(key_row(tab, other).get_by_role("switch")).to_have_attribute("aria-checked", "false")
    assert whoami(server, other_key) == 401
    plain.close()


def test_reload_or_back_after_a_rotation_never_rotates_again(
    page: Page, server: LiveServer
) -> None:
    name = unique("Replayed")
    _, first = server.add_key(name)
    sign_in(page, "owner@example.com")
    key_row(page, name).get_by_role("link", name=name).click()
    page.get_by_role("button", name="Rotate key").click()
    second = page.get_by_label("New API key").input_value()
    assert KEY_RE.match(second) and whoami(server, first) == 401

    page.reload()  # the browser posts the form again
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    expect(page.get_by_text("That rotation was already done")).to_be_visible()
    assert second not in page.content() and not re.search(r"akener_[0-9a-f]{64}", page.content())
    assert whoami(server, second) == 200  # still the secret from the one rotation

    page.goto(f"{server.url}/manage/api-keys")
    page.go_back()  # to the rotation's answer: posted again, or refused by the browser's cache
    assert not re.search(r"akener_[0-9a-f]{64}", page.content())
    assert whoami(server, second) == 200
