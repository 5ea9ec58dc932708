"""Manage → Overview: landing after sign-in, traffic across keys, keys to look after, CSVs."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update

from akener.accounts.permissions import CLI_PRINCIPAL
from akener.keys import overview
from akener.keys.models import ApiKey, KeyStatus
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


async def test_upkeep_counts_once_and_lists_never_used_then_longest_unused(
    runtime: Runtime,
) -> None:
    now = datetime.now(UTC)
    names = {}
    for label, created, used, expires in [
        ("never-old-b", 50, None, None),
        ("never-old-a", 60, None, 3),  # also expiring in 3 days
        ("never-new", 5, None, None),  # made recently: not a candidate
        ("used-long-ago", 90, 80, None),
        ("used-a-while-ago", 90, 40, 1),
        ("used-lately", 90, 2, None),
    ]:
        key, _ = await make_key(runtime, label, scopes=[])
        values: dict[str, object] = {"created_at": now - timedelta(days=created)}
        if used is not None:
            values["last_used_at"] = now - timedelta(days=used)
        if expires is not None:
            values["expires_at"] = now + timedelta(days=expires)
        await _set(runtime, key.id, **values)
        names[label] = key.id
    await make_key(runtime, "switched-off", scopes=[], status=KeyStatus.INACTIVE)
    off = (await make_key(runtime, "off-old", scopes=[], status=KeyStatus.INACTIVE))[0]
    await _set(runtime, off.id, created_at=now - timedelta(days=99))

    async def care(limit: int) -> overview.Upkeep:
        async with runtime.sessionmaker() as session:
            return await overview.upkeep(
                session,
                CLI_PRINCIPAL,
                unused_days=30,
                expiring_within=timedelta(days=7),
                now=now,
                limit=limit,
            )

    every = await care(20)
    assert [k.name for k in every.unused] == [
        "never-old-a",
        "never-old-b",
        "used-long-ago",
        "used-a-while-ago",
    ]
    assert every.unused_count == 4
    assert [k.name for k in every.expiring] == ["used-a-while-ago", "never-old-a"]
    assert every.expiring_count == 2
    for limit in (1, 2, 3):  # the limit cuts through never-used, at the seam, through used
        cut = await care(limit)
        assert [k.name for k in cut.unused] == [k.name for k in every.unused][:limit]
        assert cut.unused_count == 4 and cut.expiring_count == 2
        assert len(cut.expiring) == min(limit, 2)


async def test_busiest_keys_keep_ties_at_the_limit_in_name_order(runtime: Runtime) -> None:
    totals = {"delta": 50, "alpha": 30, "charlie": 30, "bravo": 30, "echo": 10}
    for name, total in totals.items():
        key, _ = await make_key(runtime, name, scopes=[])
        await _usage(runtime, key.id, {0: total - 1, 40: 1000, 2: 1})
    today = datetime.now(UTC).date()
    for limit, expected in [
        (1, ["delta"]),
        (2, ["delta", "alpha"]),  # three keys tie for second: the first by name
        (3, ["delta", "alpha", "bravo"]),
        (9, ["delta", "alpha", "bravo", "charlie", "echo"]),
    ]:
        async with runtime.sessionmaker() as session:
            ranked = await overview.busiest_keys(
                session, CLI_PRINCIPAL, days=30, today=today, limit=limit
            )
        assert [(t.key.name, t.requests) for t in ranked] == [(n, totals[n]) for n in expected], (
            limit
        )
