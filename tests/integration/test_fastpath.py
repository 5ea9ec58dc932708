"""The API's fast path (akener.api.fastpath) answers exactly as the documented FastAPI routes:
the same odd requests sent both ways give the same status, headers, body and access line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from akener.api import fastpath
from akener.app import AkenerApp
from akener.keys.models import KeyStatus
from akener.runtime import Runtime
from tests.factories import bearer, make_key

VERIFY = "/api/v1/keys/verify"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def framework(app: AkenerApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the same app through the framework only."""
    transport = httpx.ASGITransport(app=app.framework)
    async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as c:
        yield c


def _same(fast: httpx.Response, slow: httpx.Response, what: object) -> None:
    assert fast.status_code == slow.status_code, (what, fast.text, slow.text)
    assert fast.headers.multi_items() == slow.headers.multi_items(), what
    assert fast.content == slow.content, what


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[object, ...]]:
    found = [
        (r.method, r.path, r.status, r.client)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "akener.request"
    ]
    caplog.clear()
    return found


async def test_odd_verify_requests_get_the_documented_answers(
    app: AkenerApp,
    runtime: Runtime,
    client: httpx.AsyncClient,
    framework: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="akener.request")
    _, caller = await make_key(runtime, "gateway", scopes=["api_keys.verify"])
    _, plain = await make_key(runtime, "plain", scopes=["api_keys.read"])
    _, off = await make_key(runtime, "off", scopes=["api_keys.verify"], status=KeyStatus.INACTIVE)
    row, key = await make_key(runtime, "svc", scopes=["incidents.read"])
    good = bearer(caller) | JSON
    bodies: list[bytes | str] = [
        json.dumps({"key": key}),
        json.dumps({"key": key, "scopes": ["incidents.read"]}),
        json.dumps({"key": key, "scopes": ["never.heard.of"]}),
        json.dumps({"key": key, "ip": "::FFFF:10.0.0.1", "cost": 0}),
        json.dumps({"key": "akener_" + "f" * 64}),
        json.dumps({"key": key.upper()}),
        json.dumps({"key": key + "\x00"}),
        json.dumps({"key": key, "scopes": ["a\x00b"]}),
        '{"key": "\\ud800"}',
        '{"key": "x", "scopes": ["\\udfff"]}',
        json.dumps({"key": 5}),
        json.dumps({"key": None}),
        json.dumps({"key": key, "scopes": "incidents.read"}),
        json.dumps({"key": key, "scopes": [1]}),
        json.dumps({"key": key, "scopes": ["s"] * 65}),
        json.dumps({"key": key, "cost": "1"}),
        json.dumps({"key": key, "cost": True}),
        json.dumps({"key": key, "cost": 1.0}),
        json.dumps({"key": key, "cost": -1}),
        json.dumps({"key": key, "cost": 1001}),
        json.dumps({"key": key, "ip": "10.0.0.300"}),
        json.dumps({"key": key, "ip": "1" * 65}),
        json.dumps({"key": key, "ip": 1}),
        json.dumps({"key": key, "extra": 1}),
        json.dumps({"key": "k" * 4097}),
        json.dumps({}),
        json.dumps([key]),
        "null",
        '{"key": ',
        "",
        b'{"key": "\xff"}',
        '{"key": "a", "key": "' + key + '"}',
        '{"key": NaN}',
        json.dumps({"key": key, "pad": "x" * 20_000}),
        json.dumps({"key": key, "scopes": ["s" * 30_000]}),
    ]
    answered = app.fast.answered
    for body in bodies:
        fast = await client.post(VERIFY, content=body, headers=good)
        slow = await framework.post(VERIFY, content=body, headers=good)
        _same(fast, slow, body)
        lines = _lines(caplog)
        assert len(lines) == 2 and lines[0] == lines[1], (body, lines)
    assert app.fast.answered - answered == 9  # the well-formed bodies, up to the NUL bytes
    one = json.dumps({"key": key})
    too_big = json.dumps({"key": key, "pad": "x" * (app.settings.max_body_bytes + 1)})
    headers: list[tuple[object, dict[str, str] | list[tuple[str, str]], str]] = [
        ("no Authorization", JSON, one),
        ("forged key", bearer("akener_" + "0" * 64) | JSON, one),
        ("malformed key", bearer("akener_nope") | JSON, one),
        ("Basic", {"Authorization": "Basic eDp5"} | JSON, one),
        ("two keys", [("Authorization", f"Bearer {caller}")] * 2 + list(JSON.items()), one),
        ("lacks api_keys.verify", bearer(plain) | JSON, one),
        ("deactivated caller", bearer(off) | JSON, one),
        ("text/plain", bearer(caller) | {"Content-Type": "text/plain"}, one),
        ("charset", bearer(caller) | {"Content-Type": "application/json; charset=utf-8"}, one),
        ("+json", bearer(caller) | {"Content-Type": "application/vnd.x+json"}, one),
        ("no content type", bearer(caller), one),
        ("too big", good, too_big),
        ("too big, no key", JSON, too_big),
        ("bad body, no key", JSON, "{"),
    ]
    for what, sent, body in headers:
        fast = await client.post(VERIFY, content=body, headers=sent)
        slow = await framework.post(VERIFY, content=body, headers=sent)
        _same(fast, slow, what)
        lines = _lines(caplog)
        assert len(lines) == 2 and lines[0] == lines[1], (what, lines)
    for method in ("GET", "PUT", "DELETE", "HEAD"):
        fast = await client.request(method, VERIFY, headers=good)
        slow = await framework.request(method, VERIFY, headers=good)
        _same(fast, slow, method)
        if method == "PUT":
            assert fast.status_code == 405
        _lines(caplog)
    # And the fast answer is the full one: the key as the documented route describes it.
    answer = (await client.post(VERIFY, content=one, headers=good)).json()
    assert answer["key"]["id"] == row.id and answer["code"] == "VALID"


async def test_a_streamed_body_goes_through_the_framework(
    runtime: Runtime, client: httpx.AsyncClient, framework: httpx.AsyncClient
) -> None:
    _, caller = await make_key(runtime, "gateway", scopes=["api_keys.verify"])
    _, key = await make_key(runtime, "svc", scopes=[])

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"key": '
        yield json.dumps(key).encode() + b"}"

    answers = []
    for http in (client, framework):
        answers.append(await http.post(VERIFY, content=chunks(), headers=bearer(caller) | JSON))
    _same(answers[0], answers[1], "chunked")
    assert answers[0].json()["code"] == "VALID"


async def test_the_callers_own_limits_apply_once_per_request(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    _, admin = await make_key(runtime, "admin")
    made = await client.post(
        "/api/v1/keys",
        json={
            "name": "limited gateway",
            "scopes": ["api_keys.verify", "api_keys.read"],
            "rate_limits": [{"name": "day", "limit": 3, "period_seconds": 86400}],
        },
        headers=bearer(admin),
    )
    gateway = made.json()["key"]
    _, key = await make_key(runtime, "svc", scopes=[])
    sent = [
        await client.post(VERIFY, json={"key": key}, headers=bearer(gateway)),
        await client.post(VERIFY, json={"key": 5}, headers=bearer(gateway)),  # framework
        await client.get("/api/v1/whoami", headers=bearer(gateway)),
        await client.get("/api/v1/whoami", headers=bearer(gateway)),
    ]
    assert [a.status_code for a in sent] == [200, 422, 200, 429]
    assert sent[3].json()["error"]["code"] == "RATE_LIMITED"
    assert 0 < int(sent[3].headers["retry-after"]) <= 86400
    allowed = await client.post(
        "/api/v1/keys",
        json={"name": "fenced", "scopes": ["api_keys.verify"], "allowed_ips": ["10.9.9.0/24"]},
        headers=bearer(admin),
    )
    fenced = allowed.json()["key"]
    refused = await client.post(VERIFY, json={"key": key}, headers=bearer(fenced))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "IP_NOT_ALLOWED"


async def test_whoami_and_one_key_answer_the_documented_bytes(
    app: AkenerApp,
    runtime: Runtime,
    client: httpx.AsyncClient,
    framework: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A loaded CI machine may take more than the real second between a copy and its use.
    monkeypatch.setattr(fastpath, "RENDER_TTL", 60.0)
    caplog.set_level(logging.INFO, logger="akener.request")
    _, reader = await make_key(runtime, "reader", scopes=["api_keys.read"])
    _, bare = await make_key(runtime, "bare", scopes=[])
    row, _ = await make_key(runtime, "Déjà vu", scopes=["incidents.read"])
    cases = [
        ("/api/v1/whoami", bearer(reader)),
        ("/api/v1/whoami", bearer(bare)),
        (f"/api/v1/keys/{row.id}", bearer(reader)),
        (f"/api/v1/keys/{row.id}?x=1", bearer(reader)),
        (f"/api/v1/keys/{row.id}", bearer(bare)),  # 403
        ("/api/v1/keys/" + "0" * 32, bearer(reader)),  # 404
        ("/api/v1/keys/" + "Z" * 32, bearer(reader)),
        ("/api/v1/whoami", {}),
        ("/api/v1/whoami", bearer("akener_" + "0" * 64)),
    ]
    answered = app.fast.answered
    for _ in range(2):  # the second time from the copy
        for path, sent in cases:
            slow = await framework.get(path, headers=sent)
            fast = await client.get(path, headers=sent)
            _same(fast, slow, path)
            lines = _lines(caplog)
            assert len(lines) == 2 and lines[0] == lines[1], (path, lines)
    assert app.fast.answered - answered == 5  # the 200s from a copy (the 2nd of the 1st round)
    head = await client.head("/api/v1/whoami", headers=bearer(reader))
    assert (
        head.status_code
        == (await framework.head("/api/v1/whoami", headers=bearer(reader))).status_code
    )


async def test_a_deactivated_key_is_refused_at_once_and_its_copy_is_dropped(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    _, admin = await make_key(runtime, "admin")
    row, key = await make_key(runtime, "victim", scopes=["api_keys.read"])
    for _ in range(3):
        assert (await client.get("/api/v1/whoami", headers=bearer(key))).status_code == 200
        seen = await client.get(f"/api/v1/keys/{row.id}", headers=bearer(admin))
        assert seen.json()["status"] == "ACTIVE"
    off = await client.patch(
        f"/api/v1/keys/{row.id}", json={"status": "INACTIVE"}, headers=bearer(admin)
    )
    assert off.status_code == 200
    refused = await client.get("/api/v1/whoami", headers=bearer(key))
    assert refused.status_code == 401
    assert (await client.get(f"/api/v1/keys/{row.id}", headers=bearer(admin))).json()[
        "status"
    ] == "INACTIVE"


async def test_a_key_with_credits_is_never_answered_from_a_copy(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    _, admin = await make_key(runtime, "admin")
    made = await client.post(
        "/api/v1/keys",
        json={"name": "paid", "scopes": ["api_keys.read"], "credits": {"remaining": 10}},
        headers=bearer(admin),
    )
    key = made.json()["key"]
    left = [
        (await client.get("/api/v1/whoami", headers=bearer(key))).json()["credits"]["remaining"]
        for _ in range(3)
    ]
    assert left == [9, 8, 7]


async def test_the_key_list_answers_the_documented_bytes_and_never_misses_a_new_key(
    app: AkenerApp,
    runtime: Runtime,
    client: httpx.AsyncClient,
    framework: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastpath, "RENDER_TTL", 60.0)  # a loaded machine is slow between rounds
    caplog.set_level(logging.INFO, logger="akener.request")
    _, admin = await make_key(runtime, "admin")
    _, bare = await make_key(runtime, "bare", scopes=[])
    for n in range(3):
        await make_key(runtime, f"listed {n}", scopes=["incidents.read"])
    queries = ["", "?limit=2", "?status=ACTIVE&sort=name", "?limit=0", "?sort=nope", "?q=%00"]
    answered = app.fast.answered
    for _ in range(2):  # the second time from the copy
        for query in queries:
            for sent in (bearer(admin), bearer(bare), {}):
                slow = await framework.get("/api/v1/keys" + query, headers=sent)
                fast = await client.get("/api/v1/keys" + query, headers=sent)
                _same(fast, slow, (query, sent))
                lines = _lines(caplog)
                assert len(lines) == 2 and lines[0] == lines[1], (query, lines)
    assert app.fast.answered - answered >= 3  # the 200s of the second round
    made = await client.post("/api/v1/keys", json={"name": "brand new"}, headers=bearer(admin))
    assert made.status_code == 201
    names = [
        k["name"] for k in (await client.get("/api/v1/keys", headers=bearer(admin))).json()["items"]
    ]
    assert "brand new" in names
    off = await client.patch(
        f"/api/v1/keys/{made.json()['id']}", json={"status": "INACTIVE"}, headers=bearer(admin)
    )
    assert off.status_code == 200
    items = (await client.get("/api/v1/keys", headers=bearer(admin))).json()["items"]
    assert next(k for k in items if k["name"] == "brand new")["status"] == "INACTIVE"


async def test_requests_arriving_while_a_copy_is_made_share_it(
    app: AkenerApp, runtime: Runtime, client: httpx.AsyncClient
) -> None:
    _, key = await make_key(runtime, "busy", scopes=["api_keys.read"])
    answered = app.fast.answered
    answers = await asyncio.gather(
        *(client.get("/api/v1/whoami", headers=bearer(key)) for _ in range(8))
    )
    assert [a.status_code for a in answers] == [200] * 8
    assert len({a.content for a in answers}) == 1
    assert app.fast.answered - answered == 7  # one went to the framework, the others waited
