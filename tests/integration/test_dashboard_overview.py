"""Manage → Overview: landing after sign-in, traffic across keys, keys to look after, CSVs."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from akener.keys.models import ApiKey
from akener.runtime import Runtime
from akener.verify.models import KeyUsage
from tests.factories import csrf_of, make_key, make_role, make_user, sign_in_owner

PASSWORD = "correct horse battery"


async def _set(runtime: Runtime, key_id: str, **values: object) -> None:
    async with runtime.sessionmaker() as session:
        await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(**values))
        await session.commit()


async def _usage(runtime: Runtime, key_id: str, counts: dict[int, int]) -> None:
    today = datetime.now(UTC).date()
    async with runtime.sessionmaker() as session:
        session.add_all(
            KeyUsage(key_id=key_id, day=today - timedelta(days=ago), count=n)
            for ago, n in counts.items()
        )
        await session.commit()


def _csv(answer: httpx.Response) -> list[list[str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    return list(csv.reader(io.StringIO(answer.text)))


async def _login(client: httpx.AsyncClient, email: str) -> httpx.Response:
    page = await client.get("/login")
    data = {"email": email, "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    return await client.post("/login", data=data)


async def test_sign_in_lands_on_the_overview_or_the_first_page_one_may_see(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await make_user(runtime, "owner@example.com", "admin", owner=True)
    landed = await _login(client, "owner@example.com")
    assert landed.status_code == 303 and landed.headers["location"] == "/manage"
    page = await client.get("/manage")
    assert page.status_code == 200 and "<h1>Overview</h1>" in page.text
    await client.post("/logout", data={"csrf_token": csrf_of(page.text)})

    await make_role(runtime, "Auditor", ["audit.read"])
    await make_user(runtime, "auditor@example.com", "Auditor")
    assert (await _login(client, "auditor@example.com")).headers["location"] == "/manage"
    moved = await client.get("/manage")
    assert moved.status_code == 303 and moved.headers["location"] == "/manage/audit"
    refused = await client.get("/manage/overview/unused.csv")
    assert refused.status_code == 403


async def test_overview_shows_traffic_busiest_unused_and_expiring_with_csvs(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await sign_in_owner(client, runtime)
    now = datetime.now(UTC)
    busy, _ = await make_key(runtime, "=HYPERLINK(busy)", scopes=[])
    quiet, _ = await make_key(runtime, "Quiet robot", scopes=[])
    await make_key(runtime, "Fresh robot", scopes=[])
    soon, _ = await make_key(runtime, "Soon gone", scopes=[])
    await _set(runtime, busy.id, last_used_at=now - timedelta(hours=1))
    await _set(runtime, quiet.id, created_at=now - timedelta(days=90))
    await _set(runtime, quiet.id, last_used_at=now - timedelta(days=45))
    await _set(runtime, soon.id, created_at=now - timedelta(days=60))
    await _set(runtime, soon.id, expires_at=now + timedelta(days=2))
    await _usage(runtime, busy.id, {0: 500, 1: 300, 60: 1000})
    await _usage(runtime, soon.id, {2: 7})

    page = (await client.get("/manage")).text
    assert "807 requests in the last 30 days" in page
    assert "1,807 requests in the last 90 days" in page
    busiest = page.split('id="busiest-table"')[1].split("</table>")[0]
    assert busiest.index("HYPERLINK") < busiest.index("Soon gone") and "800" in busiest
    unused = page.split('id="unused-table"')[1].split("</table>")[0]
    assert "Quiet robot" in unused and "Fresh robot" not in unused and "Soon gone" in unused
    assert "HYPERLINK" not in unused  # used an hour ago
    expiring = page.split('id="expiring-table"')[1].split("</table>")[0]
    assert "Soon gone" in expiring and "Quiet robot" not in expiring

    days = _csv(await client.get("/manage/overview/traffic-30.csv"))
    assert days[0][:3] == ["day", "requests", "refused"] and len(days) == 31
    assert days[-1][1] == "500" and sum(int(r[1]) for r in days[1:]) == 807
    assert len(_csv(await client.get("/manage/overview/traffic-90.csv"))) == 91
    ranked = _csv(await client.get("/manage/overview/busiest.csv"))
    assert ranked[1] == [busy.id, "'=HYPERLINK(busy)", "800"]  # never a formula
    unused_rows = _csv(await client.get("/manage/overview/unused.csv"))
    assert [r[1] for r in unused_rows[1:]] == ["Soon gone", "Quiet robot"]  # never used first
    assert [r[1] for r in _csv(await client.get("/manage/overview/expiring.csv"))[1:]] == [
        "Soon gone"
    ]
    assert (await client.get("/manage/overview/nothing.csv")).status_code == 404
