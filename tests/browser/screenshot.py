"""Regenerate docs/dashboard-keys.png: the keys page with a few keys, as the owner sees it.

Run: .venv/bin/python -m tests.browser.screenshot  (or `make screenshot`)
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright
from sqlalchemy import update

from akener.keys.models import ApiKey
from tests.browser.live import CHROMIUM_ARGS, PASSWORD, LiveServer

OUT = Path(__file__).resolve().parents[2] / "docs" / "dashboard-keys.png"


async def _expire(session: Any, key_id: str, when: datetime) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(expires_at=when))


def main() -> None:
    """Start a server, add keys, sign in, and save the screenshot."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        live = LiveServer(root=root, database_url=f"sqlite+aiosqlite:///{root / 'akener.db'}")
        live.start()
        try:
            live.add_user("ada@example.com", "admin", owner=True)
            live.add_key("Monitoring Script", scopes=["api_keys.verify"])
            deploy, _ = live.add_key("Deploy Pipeline", scopes=["deploys.write"])
            old, _ = live.add_key("Uptime Robot Webhook")
            github, _ = live.add_key("GitHub Actions", scopes=["api_keys.read", "api_keys.write"])
            now = datetime.now(UTC)
            live.db(lambda s: _expire(s, deploy.id, now + timedelta(days=3, hours=2)))
            live.db(lambda s: _expire(s, github.id, now + timedelta(days=90)))
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(
                    viewport={"width": 1200, "height": 900},
                    base_url=live.url,
                    reduced_motion="reduce",
                )
                page.goto("/login?next=/manage/api-keys")
                page.get_by_label("Email").fill("ada@example.com")
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("switch", name="Status of Uptime Robot Webhook").click()
                page.get_by_role("switch", name="Status of Uptime Robot Webhook").wait_for()
                page.wait_for_selector(f"#key-{old.id}.is-inactive")
                page.screenshot(path=str(sys.argv[1]) if len(sys.argv) > 1 else str(OUT))
                browser.close()
        finally:
            live.stop()


if __name__ == "__main__":
    main()
