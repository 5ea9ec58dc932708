"""Manage → Audit log over HTTP: readable rows, every filter, paging, bad input, read only."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from akener.audit.models import AuditEvent
from akener.runtime import Runtime
from tests.factories import bearer, make_key, make_role, make_user, sign_in

URL = "/manage/audit"


async def owner(client: httpx.AsyncClient, runtime: Runtime) -> str:
    await make_user(runtime, "owner@example.com", "admin", owner=True)
    return await sign_in(client, "owner@example.com")


def rows(page: str) -> list[str]:
    """The table's body rows, as text with tags removed."""
    if "<tbody>" not in page:
        return []
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    return [
        html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))).strip()
        for row in body.split("<tr>")[1:]
    ]


async def add_events(runtime: Runtime, *events: AuditEvent) -> None:
    async with runtime.sessionmaker() as session:
        session.add_all(events)
        await session.commit()


def event(action: str, when: datetime, actor: str = "cli", target: str = "t1") -> AuditEvent:
    return AuditEvent(
        occurred_at=when,
        actor=actor,
        action=action,
        target_type="key",
        target_id=target,
        target_name=f"name of {target}",
    )


async def test_events_newest_first_with_readable_actors_actions_and_changes(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    csrf = await owner(client, runtime)
    row, key = await make_key(runtime, "Nightly Backup", scopes=["api_keys.read"])
    await client.post(
        f"/manage/api-keys/{row.id}/status", data={"csrf_token": csrf, "status": "INACTIVE"}
    )
    _, api = await make_key(runtime, "Automation", scopes=["api_keys.write", "audit.read"])
    await client.post("/api/v1/keys", json={"name": "Made by a key"}, headers=bearer(api))

    page = await client.get(URL)
    assert page.status_code == 200
    assert '<a href="/manage/audit" aria-current="page">Audit log</a>' in page.text
    found = rows(page.text)
    times = [datetime.fromisoformat(r[:19]) for r in found]  # each row starts with its time
    assert times == sorted(times, reverse=True)
    assert "key “Automation”" in found[0] and "Key created" in found[0]
    assert "Made by a key" in found[0]
    deactivated = next(r for r in found if "Key deactivated" in r)
    assert "owner@example.com" in deactivated and "Nightly Backup" in deactivated
    assert "status : ACTIVE → INACTIVE" in deactivated
    assert "Signed in" in found[-1] and "owner@example.com" in found[-1]
    created = next(r for r in found if "Key created" in r and "Nightly Backup" in r)
    assert "scopes : — → api_keys.read" in created
    assert key not in page.text
    # Nothing on the page changes the log: its only form is the GET filter (and sign-out).
    forms = re.findall(r'<form method="(\w+)" action="([^"]*)"', page.text)
    assert sorted(forms) == [("get", "/manage/audit"), ("post", "/logout")]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        refused = await client.request(method, URL, data={"csrf_token": csrf})
        assert refused.status_code == 405


async def test_filters_by_action_actor_email_or_id_and_target(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    csrf = await owner(client, runtime)
    a, _ = await make_key(runtime, "Alpha", scopes=[])
    b, _ = await make_key(runtime, "Beta", scopes=[])
    for key in (a, b):
        await client.post(
            f"/manage/api-keys/{key.id}/status", data={"csrf_token": csrf, "status": "INACTIVE"}
        )

    by_action = rows((await client.get(URL, params={"action": "key.deactivated"})).text)
    assert len(by_action) == 2 and all("Key deactivated" in r for r in by_action)
    page = (await client.get(URL, params={"action": "key.deactivated"})).text
    assert '<option value="key.deactivated" selected>' in page

    by_email = rows((await client.get(URL, params={"actor": " Owner@Example.com "})).text)
    assert by_email and all("owner@example.com" in r for r in by_email)
    assert not any("Command line" in r for r in by_email)
    by_cli = rows((await client.get(URL, params={"actor": "cli"})).text)
    assert [r.count("Key created") for r in by_cli] == [1, 1]

    by_target = rows((await client.get(URL, params={"target": a.id})).text)
    assert len(by_target) == 2 and all("Alpha" in r for r in by_target)
    by_type = rows((await client.get(URL, params={"target": "user"})).text)
    assert by_type and all("Signed in" in r for r in by_type)

    both = rows((await client.get(URL, params={"target": b.id, "action": "key.created"})).text)
    assert len(both) == 1 and "Beta" in both[0]
    nothing = await client.get(URL, params={"actor": "nobody@example.com"})
    assert nothing.status_code == 200 and "No events match these filters" in nothing.text
    assert 'href="/manage/audit">Clear filters' in nothing.text


async def test_time_range_is_inclusive_of_whole_days(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await owner(client, runtime)
    day = datetime(2026, 3, 10, tzinfo=UTC)
    await add_events(
        runtime,
        event("key.created", day - timedelta(seconds=1), target="before"),
        event("key.created", day, target="first"),
        event("key.renamed", day + timedelta(days=1, hours=23, minutes=59), target="last"),
        event("key.deleted", day + timedelta(days=2), target="after"),
    )
    found = rows(
        (await client.get(URL, params={"since": "2026-03-10", "until": "2026-03-11"})).text
    )
    assert [r.split(" name of ")[1].split()[0] for r in found] == ["last", "first"]
    only_since = rows((await client.get(URL, params={"since": "2026-03-12"})).text)
    assert any("name of after" in r for r in only_since)
    assert not any("name of last" in r for r in only_since)
    precise = rows((await client.get(URL, params={"until": "2026-03-09T23:59:59Z"})).text)
    assert len(precise) == 1 and "name of before" in precise[0]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "2026-13-01"}, "The “From” date must be a date such as"),
        ({"until": "yesterday"}, "The “To” date must be a date such as"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "must not be after the “To” date"),
        ({"cursor": "abc"}, "That page of the log does not exist"),
        ({"actor": "a\x00b"}, "without control characters"),
        ({"target": "x" * 500}, "at most 200 characters"),
    ],
    ids=["bad-since", "bad-until", "reversed", "cursor", "nul", "long"],
)
async def test_bad_filters_get_a_message_on_the_page(
    client: httpx.AsyncClient, runtime: Runtime, params: dict[str, str], message: str
) -> None:
    await owner(client, runtime)
    page = await client.get(URL, params=params)
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert message in html.unescape(page.text)
    assert 'role="alert"' in page.text and "<tbody>" not in page.text
    assert '<form method="get" action="/manage/audit"' in page.text  # the form stays to fix it


async def test_pages_with_the_service_cursor_keep_the_filters(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await owner(client, runtime)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    await add_events(
        runtime,
        *(event("key.renamed", start + timedelta(minutes=i), target=f"n{i}") for i in range(60)),
        event("key.deleted", start, target="other"),
    )
    first = await client.get(URL, params={"action": "key.renamed"})
    found = rows(first.text)
    assert len(found) == 30 and "name of n59" in found[0] and "name of n30" in found[-1]
    older = re.search(r'<a href="([^"]+)">Older events →</a>', first.text)
    assert older
    link = html.unescape(older.group(1))
    assert "action=key.renamed" in link and "cursor=" in link
    second = await client.get(link)
    found = rows(second.text)
    assert len(found) == 30 and "name of n29" in found[0] and "name of n0" in found[-1]
    assert "Older events" not in second.text
    assert 'href="/manage/audit?action=key.renamed">← Newest events' in second.text


async def test_deleted_actors_keep_a_name_and_unknown_actions_still_show(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    csrf = await owner(client, runtime)
    _, api = await make_key(runtime, "Short-lived robot", scopes=["api_keys.write"])
    made = await client.post("/api/v1/keys", json={"name": "Robot's key"}, headers=bearer(api))
    robot_id = (await client.get("/api/v1/whoami", headers=bearer(api))).json()["id"]
    await client.post(f"/manage/api-keys/{robot_id}/delete", data={"csrf_token": csrf})
    await add_events(runtime, event("key.teleported", datetime.now(UTC), actor="key:" + "f" * 32))
    page = (await client.get(URL)).text
    found = rows(page)
    assert "key.teleported" in found[0] and "key:" + "f" * 32 in found[0]
    robot_row = next(r for r in found if "Robot's key" in r)
    assert "key “Short-lived robot” (deleted)" in robot_row
    assert made.status_code == 201
    filtered = await client.get(URL, params={"action": "key.teleported"})
    assert '<option value="key.teleported" selected>' in filtered.text


async def test_the_audit_page_needs_audit_read(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await make_role(runtime, "Keys only", ["api_keys.read"])
    await make_user(runtime, "k@example.com", "Keys only")
    await sign_in(client, "k@example.com")
    assert "/manage/audit" not in (await client.get("/manage/api-keys")).text
    refused = await client.get(URL)
    assert refused.status_code == 403 and "audit.read" in refused.text


async def test_control_characters_in_api_filters_are_a_clear_422(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, key = await make_key(runtime, "reader", scopes=["audit.read"])
    for name in ("actor", "action", "target"):
        answer = await client.get("/api/v1/audit", params={name: "a\x00b"}, headers=bearer(key))
        assert answer.status_code == 422, answer.text  # PostgreSQL would fail on the NUL
        assert "control characters" in answer.json()["error"]["message"]
