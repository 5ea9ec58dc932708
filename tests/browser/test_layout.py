"""Every page at every width with real data: hostile names, many scopes, 10,000 keys (issue 12)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import make_url

from akener.settings import Settings
from tests.browser.conftest import BACKENDS, _run, _server
from tests.browser.live import PASSWORD, SECRET, LiveServer, run_async
from tests.browser.seed import add_bulk, add_hostile, add_hostile_accounts
from tests.conftest import PG_URL, _admin

pytestmark = pytest.mark.browser
WIDTHS = [360, 390, 768, 1280, 1920]
BULK = 10_000
KEY_RE = re.compile(r"^akener_[0-9a-f]{64}$")

# The widest thing on the page, and the cells whose content spills out of their box.
MEASURE = """() => {
  const spilled = [];
  for (const cell of document.querySelectorAll("td, th")) {
    // Unseen cells (the card layout's column headings, kept for screen readers) do not count.
    if (cell.offsetParent === null || cell.closest("thead")?.clientWidth <= 1) continue;
    if (cell.scrollWidth > cell.clientWidth + 1) spilled.push(cell.textContent.trim().slice(0, 60));
  }
  return {
    doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,
    inner: window.innerWidth, spilled, height: document.documentElement.scrollHeight,
  };
}"""


@pytest.fixture(scope="module", params=BACKENDS)
def crowded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """A server holding the hostile keys and 10,000 more, on each database."""
    root = tmp_path_factory.mktemp("crowded")
    if request.param == "sqlite":
        live = _server(root)
        drop = None
    else:
        base = make_url(Settings(database_url=PG_URL, _env_file=None).database_url)  # type: ignore[call-arg]
        name = f"akener_crowded_{os.getpid()}"
        admin = base.set(database="postgres").render_as_string(hide_password=False)
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        run_async(lambda: _admin(admin, drop, f'CREATE DATABASE "{name}"'))
        live = LiveServer(
            root=root, database_url=base.set(database=name).render_as_string(hide_password=False)
        )
    for running in _run(live):
        running.db(lambda s: add_bulk(s, BULK))
        ids = running.db(add_hostile)
        ids |= running.db(lambda s: add_hostile_accounts(s, SECRET.encode()))
        yield running, ids
    if drop is not None:
        run_async(lambda: _admin(admin, drop))


def _sign_in(browser: Browser, live: LiveServer, width: int) -> Page:
    page = browser.new_page(base_url=live.url, viewport={"width": width, "height": 900})
    page.goto("/login?next=/manage/api-keys")
    page.get_by_label("Email").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="API Keys", exact=True)).to_be_visible()
    return page


def _pages(ids: dict[str, str]) -> list[str]:
    return [
        "/manage",
        "/manage/api-keys",
        f"/manage/api-keys/{ids['soon']}",
        "/manage/audit",
    ]


def _inside(page: Page, locator: object) -> None:
    box = locator.bounding_box()  # type: ignore[attr-defined]
    assert box is not None
    width = page.evaluate("window.innerWidth")
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (box, width)
    locator.click(trial=True)  # type: ignore[attr-defined]  # visible, enabled, not covered


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_scrolls_sideways_and_no_cell_spills(
    browser: Browser, crowded: tuple[LiveServer, dict[str, str]], width: int
) -> None:
    live, ids = crowded
    page = _sign_in(browser, live, width)
    try:
        others = [
            "/manage/users",
            "/manage/roles",
            "/manage/webhooks",
            "/manage/api-keys/new",
            "/manage/api-keys?sort=name",
        ]
        for path in [*_pages(ids), *others]:
            page.goto(path)
            found = page.evaluate(MEASURE)
            assert found["doc"] <= found["inner"], (path, width, found)
            assert found["body"] <= found["inner"], (path, width, found)
            assert found["spilled"] == [], (path, width, found)
    finally:
        page.close()


# Boxes that scroll sideways inside the page (a table in an overflow-x: auto wrapper): the
# document may fit while a table hides its columns behind a scrollbar of its own.
SCROLLERS = """() => {
  const found = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.matches("input, textarea, select, option") || el.offsetParent === null) continue;
    if (el.closest(".visually-hidden, dialog:not([open]), details:not([open])")) continue;
    const x = getComputedStyle(el).overflowX;
    if ((x === "auto" || x === "scroll") && el.scrollWidth > el.clientWidth + 1) {
      found.push(`${el.tagName}.${el.className}: ${el.scrollWidth} > ${el.clientWidth}`);
    }
  }
  return found;
}"""


def _every_page(ids: dict[str, str]) -> list[str]:
    return [
        *_pages(ids),
        "/manage/users",
        f"/manage/users/{ids['user']}",
        "/manage/roles",
        f"/manage/roles/{ids['role']}",
        "/manage/webhooks",
        f"/manage/webhooks/{ids['webhook']}",
        "/manage/owners",
        f"/manage/api-keys/{ids['soon']}/delete",
    ]


@pytest.mark.parametrize("width", [360, 1280])
def test_no_table_scrolls_inside_its_box(
    browser: Browser, crowded: tuple[LiveServer, dict[str, str]], width: int
) -> None:
    live, ids = crowded
    page = _sign_in(browser, live, width)
    try:
        found = {}
        for path in _every_page(ids):
            page.goto(path)
            assert page.title() and "Not allowed" not in page.title(), path
            measured = page.evaluate(MEASURE)
            wide = [f"document {measured['doc']} px"] if measured["doc"] > width else []
            found[path] = wide + page.evaluate(SCROLLERS) + measured["spilled"]
        assert {path: boxes for path, boxes in found.items() if boxes} == {}
    finally:
        page.close()


@pytest.mark.parametrize("width", [360, 390, 1280, 1920])
def test_first_and_last_rows_keep_switch_and_delete_in_reach(
    browser: Browser, crowded: tuple[LiveServer, dict[str, str]], width: int
) -> None:
    live, _ = crowded
    page = _sign_in(browser, live, width)
    try:
        rows = page.locator("#key-rows > tr")
        expect(rows).to_have_count(20)
        for row in (rows.first, rows.last):
            row.scroll_into_view_if_needed()
            switch, delete = row.get_by_role("switch"), row.get_by_role("button", name="Delete")
            _inside(page, switch)
            _inside(page, delete)
            mask = row.locator("code.mask")
            expect(mask).to_be_visible()
            _inside(page, mask)
            assert mask.inner_text()[-4:].isalnum()
            name = row.get_by_role("rowheader")
            assert len(name.get_attribute("title") or "") >= 10  # the full name on hover
            if width < 800:
                for target in (switch, delete):  # a fingertip's size
                    box = target.bounding_box()
                    assert box and box["height"] >= 44 and box["width"] >= 44, box
        first = rows.first
        expect(first.get_by_role("rowheader")).to_contain_text("-used")
    finally:
        page.close()


@pytest.mark.parametrize("width", [360, 1280])
def test_the_one_time_key_is_shown_whole_in_monospace(
    browser: Browser, crowded: tuple[LiveServer, dict[str, str]], width: int
) -> None:
    live, _ = crowded
    page = _sign_in(browser, live, width)
    try:
        page.get_by_role("button", name="Create API key").click()
        dialog = page.get_by_role("dialog", name="Create API key")
        dialog.get_by_label("Name").fill(f"Whole key {width}")
        dialog.get_by_role("button", name="Create key").click()
        secret = dialog.get_by_label("New API key")
        expect(secret).to_have_value(KEY_RE)
        fits = secret.evaluate(
            "el => ({sw: el.scrollWidth, cw: el.clientWidth, sh: el.scrollHeight,"
            " ch: el.clientHeight, font: getComputedStyle(el).fontFamily})"
        )
        assert fits["sw"] <= fits["cw"] and fits["sh"] <= fits["ch"] + 1, fits
        assert "mono" in fits["font"].lower(), fits
        expect(dialog.get_by_role("button", name="Copy")).to_be_visible()
        _inside(page, dialog.get_by_role("button", name="Copy"))
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        page.close()


SERIOUS = ("serious", "critical")


def _violations(page: Page) -> list[str]:
    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in SERIOUS
    ]


@pytest.mark.parametrize("width", [390, 1280])
def test_every_page_passes_axe_without_serious_violations(
    browser: Browser, crowded: tuple[LiveServer, dict[str, str]], width: int
) -> None:
    live, ids = crowded
    anonymous = browser.new_page(base_url=live.url, viewport={"width": width, "height": 900})
    anonymous.goto("/login")
    found = {"/login": _violations(anonymous)}
    anonymous.close()
    page = _sign_in(browser, live, width)
    try:
        extra = [
            "/manage/api-keys/new",
            f"/manage/api-keys/{ids['soon']}/delete",
            "/manage/api-keys?q=zzz-nothing",
            "/manage/api-keys?sort=digest",
            "/manage/users",
            "/manage/roles",
            "/manage/webhooks",
            "/manage/audit?since=not-a-date",
        ]
        for path in [*_pages(ids), *extra]:
            page.goto(path)
            found[path] = _violations(page)
        page.goto("/manage/api-keys")
        page.get_by_role("button", name="Create API key").click()
        found["create dialog"] = _violations(page)
        page.keyboard.press("Escape")
        page.locator("#key-rows > tr").first.get_by_role("button", name="Delete").click()
        found["delete dialog"] = _violations(page)
        assert {path: v for path, v in found.items() if v} == {}
    finally:
        page.close()


def _focus_inside(page: Page, dialog_id: str) -> bool:
    return bool(
        page.evaluate(f"document.getElementById('{dialog_id}').contains(document.activeElement)")
    )


def test_keyboard_alone_dialogs_trap_and_return_focus_and_the_switch_switches(
    browser: Browser, crowded: tuple[LiveServer, dict[str, str]]
) -> None:
    live, ids = crowded
    page = _sign_in(browser, live, 1280)
    try:
        opener = page.get_by_role("button", name="Create API key")
        opener.focus()
        page.keyboard.press("Enter")
        expect(
            page.get_by_role("dialog", name="Create API key").get_by_label("Name")
        ).to_be_focused()
        for _ in range(25):
            page.keyboard.press("Tab")
            assert _focus_inside(page, "create-dialog")
        for _ in range(25):
            page.keyboard.press("Shift+Tab")
            assert _focus_inside(page, "create-dialog")
        page.keyboard.press("Escape")
        expect(page.get_by_role("dialog", name="Create API key")).to_be_hidden()
        expect(opener).to_be_focused()

        row = page.locator(f"#key-{ids['used']}")
        delete = row.get_by_role("button", name="Delete")
        delete.focus()
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Delete API key")
        expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        seen = set()
        for _ in range(8):
            page.keyboard.press("Tab")
            assert _focus_inside(page, "delete-dialog")
            seen.add(page.evaluate("document.activeElement.textContent.trim()"))
        assert {"Cancel", "Deactivate instead", "Delete key"} <= seen
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(delete).to_be_focused()

        switch = row.get_by_role("switch")
        expect(switch).to_have_attribute("aria-checked", "true")
        switch.focus()
        page.keyboard.press("Space")
        expect(switch).to_have_attribute("aria-checked", "false")
        expect(page.get_by_role("status").first).to_contain_text("is now off")
        expect(switch).to_be_focused()
        page.keyboard.press("Enter")
        expect(switch).to_have_attribute("aria-checked", "true")
        expect(page.get_by_role("status").first).to_contain_text("is now on")
    finally:
        page.close()
