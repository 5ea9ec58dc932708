"""The audit log: every key change recorded with its actor, client and before/after values."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from akener.accounts.permissions import ALL_PERMISSIONS
from akener.audit.models import AuditEvent
from akener.runtime import Runtime
from tests.factories import bearer, make_key


async def events(client: httpx.AsyncClient, key: str, **params: str) -> list[dict[str, object]]:
    answer = await client.get("/api/v1/audit", params=params, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    items: list[dict[str, object]] = answer.json()["items"]
    return items


async def test_key_lifecycle_is_recorded(client: httpx.AsyncClient, runtime: Runtime) -> None:
    admin_row, admin = await make_key(runtime, "admin", scopes=[*ALL_PERMISSIONS, "x.read"])
    created = await client.post(
        "/api/v1/keys", json={"name": "CI", "scopes": ["x.read"]}, headers=bearer(admin)
    )
    key_id = created.json()["id"]
    url = f"/api/v1/keys/{key_id}"
    await client.patch(url, json={"name": "CI runner"}, headers=bearer(admin))
    await client.patch(url, json={"status": "INACTIVE"}, headers=bearer(admin))
    await client.patch(url, json={"status": "ACTIVE"}, headers=bearer(admin))
    await client.delete(url, headers=bearer(admin))

    found = await events(client, admin, target=key_id)
    assert [e["action"] for e in found] == [
        "key.deleted",
        "key.activated",
        "key.deactivated",
        "key.renamed",
        "key.created",
    ]
    assert {e["actor"] for e in found} == {f"key:{admin_row.id}"}
    assert {e["client"] for e in found} == {"127.0.0.1"}
    by_action = {e["action"]: e for e in found}
    assert by_action["key.renamed"]["changes"] == {"name": {"before": "CI", "after": "CI runner"}}
    assert by_action["key.deactivated"]["changes"] == {
        "status": {"before": "ACTIVE", "after": "INACTIVE"}
    }
    assert by_action["key.created"]["changes"]["scopes"] == {"before": None, "after": ["x.read"]}
    text = json.dumps(found)
    assert created.json()["key"] not in text and created.json()["key"][7:40] not in text


async def test_filters_time_range_and_paging(client: httpx.AsyncClient, runtime: Runtime) -> None:
    _, admin = await make_key(runtime, "admin")
    for i in range(5):
        await client.post("/api/v1/keys", json={"name": f"k{i}"}, headers=bearer(admin))
    assert len(await events(client, admin, action="key.created")) == 6
    assert await events(client, admin, action="key.deleted") == []
    assert len(await events(client, admin, actor="cli")) == 1  # the factory's own create
    assert len(await events(client, admin, target="key")) == 6
    now = datetime.now(UTC)
    assert len(await events(client, admin, since=(now - timedelta(minutes=5)).isoformat())) == 6
    assert await events(client, admin, since=(now + timedelta(minutes=5)).isoformat()) == []
    assert await events(client, admin, until="2000-01-01") == []

    first = (await client.get("/api/v1/audit", params={"limit": 4}, headers=bearer(admin))).json()
    rest = await client.get(
        "/api/v1/audit", params={"limit": 4, "cursor": first["next_cursor"]}, headers=bearer(admin)
    )
    ids = [e["id"] for e in first["items"]] + [e["id"] for e in rest.json()["items"]]
    assert len(ids) == len(set(ids)) == 6 and ids == sorted(ids, reverse=True)
    assert rest.json()["next_cursor"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"until": "2026-13-01"},
        {"since": "2026-11-30", "until": "2026-11-01"},
        {"limit": "201"},
        {"limit": "0"},
        {"cursor": "abc"},
    ],
)
async def test_bad_filters_are_422(
    client: httpx.AsyncClient, runtime: Runtime, params: dict[str, str]
) -> None:
    _, admin = await make_key(runtime, "admin")
    answer = await client.get("/api/v1/audit", params=params, headers=bearer(admin))
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_nothing_edits_or_deletes_audit_rows(
    client: httpx.AsyncClient, runtime: Runtime, method: str
) -> None:
    _, admin = await make_key(runtime, "admin")
    for path in ("/api/v1/audit", "/api/v1/audit/1"):
        answer = await client.request(method, path, headers=bearer(admin))
        assert answer.status_code in {404, 405}
    async with runtime.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == 1


async def test_reading_the_log_needs_audit_read(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, reader = await make_key(runtime, "reader", scopes=["api_keys.read"])
    answer = await client.get("/api/v1/audit", headers=bearer(reader))
    assert answer.status_code == 403 and "audit.read" in answer.text


def test_cli_exports_csv_and_json_lines(
    tmp_path: object,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
) -> None:
    from tests.conftest import TEST_SECRET
    from tests.integration.test_serve import run_cli

    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("AKENER_DATABASE_URL", database_url)
    monkeypatch.setenv("AKENER_SECRET_KEY", TEST_SECRET)
    assert run_cli(monkeypatch, capsys, "keys", "create", "--name", "exported")[0] == 0
    code, out, err = run_cli(monkeypatch, capsys, "audit", "export", "--format", "csv")
    assert code == 0 and "Exported 1 audit events" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["action"], r["target_name"], r["actor"]) for r in rows] == [
        ("key.created", "exported", "cli")
    ]
    code, out, _ = run_cli(
        monkeypatch, capsys, "audit", "export", "--format", "jsonl", "--action", "key.deleted"
    )
    assert code == 0 and out == ""
    code, _, err = run_cli(monkeypatch, capsys, "audit", "export", "--since", "not-a-date")
    assert code == 1 and "ISO 8601" in err
