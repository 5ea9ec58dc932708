"""Manage → Webhooks and the key page's leak report, through plain forms."""

from __future__ import annotations

import asyncio
import html
import re

import httpx
from standardwebhooks import Webhook

from akener.app import AkenerApp
from akener.runtime import Runtime
from tests.factories import bearer, make_key, make_user, sign_in, sign_in_owner
from tests.receivers import Receiver

SECRET_RE = re.compile(r'value="(whsec_[A-Za-z0-9+/=]+)"')


async def test_adding_a_webhook_shows_the_secret_once_and_the_log_resends(
    client: httpx.AsyncClient, runtime: Runtime, app: AkenerApp
) -> None:
    runtime.sender.poster.allow_private = True  # the receiver is local
    csrf = await sign_in_owner(client, runtime)
    with Receiver(status=500) as receiver:
        added = await client.post(
            "/manage/webhooks",
            data={"csrf_token": csrf, "url": receiver.url, "events": "key.created"},
        )
        assert added.status_code == 422  # loopback: refused by the registration policy
        assert "non-public address" in html.unescape(added.text)
        runtime.settings.webhooks_allow_private = True
        added = await client.post(
            "/manage/webhooks",
            data={"csrf_token": csrf, "url": receiver.url, "events": "key.created"},
        )
        assert added.status_code == 200
        assert added.headers["cache-control"] == "no-store"
        found = SECRET_RE.search(added.text)
        assert found
        secret = found.group(1)
        listing = await client.get("/manage/webhooks")
        assert receiver.url in listing.text and secret not in listing.text
        hook_id = re.search(r'href="/manage/webhooks/([0-9a-f]{32})"', listing.text).group(1)  # type: ignore[union-attr]
        await make_key(runtime, "announced")
        for _ in range(200):  # the attempt is recorded just after the receiver answers
            page = await client.get(f"/manage/webhooks/{hook_id}")
            if "HTTP 500" in page.text:
                break
            await asyncio.sleep(0.05)
        assert secret not in page.text and "HTTP 500" in page.text
        delivery = re.search(r"/deliveries/([0-9a-f]{32})/resend", page.text).group(1)  # type: ignore[union-attr]
        receiver.status = 200
        resent = await client.post(
            f"/manage/webhooks/{hook_id}/deliveries/{delivery}/resend", data={"csrf_token": csrf}
        )
        assert resent.status_code == 303
        for _ in range(200):
            if len(receiver.got) >= 2:
                break
            await asyncio.sleep(0.02)
    assert Webhook(secret).verify(receiver.got[-1].body, receiver.got[-1].headers)
    changed = await client.post(
        f"/manage/webhooks/{hook_id}",
        data={"csrf_token": csrf, "url": receiver.url, "events": "key.deleted", "description": "d"},
    )
    assert changed.status_code == 303
    page = await client.get(f"/manage/webhooks/{hook_id}")
    assert (
        'value="key.deleted" checked' in page.text
        and 'value="key.created" checked' not in page.text
    )
    bad = await client.post(
        f"/manage/webhooks/{hook_id}",
        data={"csrf_token": csrf, "url": "ftp://x", "events": "key.deleted"},
    )
    assert bad.status_code == 422
    deleted = await client.post(f"/manage/webhooks/{hook_id}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    assert receiver.url not in (await client.get("/manage/webhooks")).text


async def test_report_as_leaked_switches_the_key_off_and_a_reader_sees_it_disabled(
    client: httpx.AsyncClient, runtime: Runtime, app: AkenerApp
) -> None:
    row, plaintext = await make_key(runtime, "leaky")
    csrf = await sign_in_owner(client, runtime)
    page = await client.get(f"/manage/api-keys/{row.id}")
    assert "Report as leaked" in page.text
    reported = await client.post(
        f"/manage/api-keys/{row.id}/leaked",
        data={"csrf_token": csrf, "url": "https://paste.example/abc"},
    )
    assert reported.status_code == 303
    assert (await client.get("/api/v1/whoami", headers=bearer(plaintext))).status_code == 401
    assert runtime.verifier.refusals is not None
    await runtime.verifier.refusals.flush()
    page = await client.get(f"/manage/api-keys/{row.id}")
    assert "Still being used" in page.text and "127.0.0.1" in page.text
    await make_user(runtime, "reader@example.com", "member")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://akener.test",
    ) as reader:
        await sign_in(reader, "reader@example.com")
        seen = await reader.get(f"/manage/api-keys/{row.id}")
    assert re.search(
        r'disabled title="Needs the api_keys.write permission">Report as leaked', seen.text
    )
