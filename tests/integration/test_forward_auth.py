"""/authz, the forward-auth endpoint, in-process on every database."""

from __future__ import annotations

import json
import logging
from urllib.parse import unquote

import httpx
import pytest

from akener.app import AkenerApp
from akener.authz.handler import ForwardAuth
from akener.runtime import Runtime
from tests.factories import bearer, make_key
from tests.helpers import count_statements


async def test_no_key_is_401_with_bearer_challenge(client: httpx.AsyncClient) -> None:
    answer = await client.get("/authz")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"]["code"] == "UNAUTHORIZED"
    # Empty, so a proxy that copies only what it receives still replaces the client's own.
    for name in ("x-akener-key-id", "x-akener-key-name", "x-akener-scopes"):
        assert answer.headers.get_list(name) == [""]
    assert json.loads(answer.headers["x-akener-error"]) == answer.json()


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"])
async def test_valid_key_is_200_with_identity_headers_for_any_method(
    client: httpx.AsyncClient, runtime: Runtime, method: str
) -> None:
    row, key = await make_key(runtime, "Monitoring Script", scopes=["incidents.read", "b.c"])
    answer = await client.request(method, "/authz", headers=bearer(key))
    assert answer.status_code == 200
    assert answer.headers["x-akener-key-id"] == row.id
    assert answer.headers["x-akener-key-name"] == "Monitoring Script"
    assert answer.headers["x-akener-scopes"] == "b.c incidents.read"
    assert answer.content == b""


async def test_non_ascii_name_is_percent_encoded(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, key = await make_key(runtime, "Déploiement 100% ✓", scopes=[])
    answer = await client.get("/authz", headers=bearer(key))
    raw = answer.headers.get_list("x-akener-key-name")[0]
    assert raw.isascii()
    assert unquote(raw) == "Déploiement 100% ✓"
    assert answer.headers["x-akener-scopes"] == ""


async def test_required_scopes_from_query_and_header(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, key = await make_key(runtime, "writer", scopes=["incidents.read", "incidents.write"])
    _, reader = await make_key(runtime, "reader", scopes=["incidents.read"])
    ok = "/authz?scope=incidents.read&scope=incidents.write"
    assert (await client.get(ok, headers=bearer(key))).status_code == 200
    refused = await client.get(ok, headers=bearer(reader))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "FORBIDDEN"
    assert (await client.get("/authz?scope=incidents.read", headers=bearer(reader))).is_success
    header = {"X-Akener-Required-Scope": "incidents.write"} | bearer(reader)
    assert (await client.get("/authz", headers=header)).status_code == 403
    # Envoy appends the client's path and query: the query is the client's, not a requirement.
    envoy = await client.get("/authz/v1/items?scope=anything", headers=bearer(reader))
    assert envoy.status_code == 200
    envoy_scoped = await client.get("/authz/v1/items", headers=header)
    assert envoy_scoped.status_code == 403


async def test_inactive_and_deleted_keys_are_refused_on_the_next_request(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, admin = await make_key(runtime, "admin")
    row, key = await make_key(runtime, "worker", scopes=[])
    assert (await client.get("/authz", headers=bearer(key))).status_code == 200
    off = await client.patch(
        f"/api/v1/keys/{row.id}", json={"status": "INACTIVE"}, headers=bearer(admin)
    )
    assert off.status_code == 200
    assert (await client.get("/authz", headers=bearer(key))).status_code == 401
    on = await client.patch(
        f"/api/v1/keys/{row.id}", json={"status": "ACTIVE"}, headers=bearer(admin)
    )
    assert on.status_code == 200
    assert (await client.get("/authz", headers=bearer(key))).status_code == 200
    renamed = await client.patch(
        f"/api/v1/keys/{row.id}", json={"name": "renamed"}, headers=bearer(admin)
    )
    assert renamed.status_code == 200
    answer = await client.get("/authz", headers=bearer(key))
    assert answer.headers["x-akener-key-name"] == "renamed"
    gone = await client.delete(f"/api/v1/keys/{row.id}", headers=bearer(admin))
    assert gone.status_code == 204
    assert (await client.get("/authz", headers=bearer(key))).status_code == 401


async def test_cached_answers_do_not_touch_the_database(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, key = await make_key(runtime, "hot", scopes=[])
    unknown = "akener_" + "0" * 64
    for credential in (key, unknown):
        with count_statements(runtime.engine) as first:
            await client.get("/authz", headers=bearer(credential))
        assert [s for s in first.statements if "api_keys" in s], first.statements
        with count_statements(runtime.engine) as later:
            for _ in range(50):
                await client.get("/authz", headers=bearer(credential))
        assert len(later) == 0


BAD_VALUES: list[bytes] = [
    b"Bearer akener_" + b"A" * 64,  # uppercase hex
    b"Bearer akener_" + b"a" * 63,  # one short
    b"Bearer akener_" + b"a" * 65,  # one long
    b"Bearer akener_",
    b"Bearer " + b"a" * 8192,  # an 8 KB header
    b"Bearer akener_" + b"\xff" * 64,  # non-ASCII bytes
    b"Basic dXNlcjpwYXNz",
    b"Bearer",
    b"akener_" + b"a" * 64,  # no scheme
    "Bearer akener_ä".encode(),
]


@pytest.mark.parametrize("value", BAD_VALUES, ids=range(len(BAD_VALUES)))
async def test_bad_credentials_are_401_without_touching_the_database(
    client: httpx.AsyncClient, runtime: Runtime, value: bytes
) -> None:
    with count_statements(runtime.engine) as statements:
        answer = await client.get("/authz", headers=[(b"authorization", value)])
        api = await client.get("/api/v1/whoami", headers=[(b"authorization", value)])
    assert answer.status_code == 401 and api.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert len(statements) == 0


async def test_two_authorization_headers_are_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, key = await make_key(runtime, "twice", scopes=[])
    value = f"Bearer {key}".encode()
    answer = await client.get("/authz", headers=[(b"authorization", value)] * 2)
    assert answer.status_code == 401


async def test_a_flood_of_random_keys_keeps_memory_bounded(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    import secrets

    runtime.verifier.cache.max_unknown = 50
    runtime.verifier.throttle = None  # memory alone here; test_throttle.py covers the throttle
    for _ in range(300):
        answer = await client.get("/authz", headers=bearer("akener_" + secrets.token_hex(32)))
        assert answer.status_code == 401
    assert runtime.verifier.cache.unknown_count == 50


MISCONFIGURED_QUERIES = [
    "scopes=admin",  # a typo
    "Scope=admin",  # the name is case-sensitive
    "scope[]=admin",
    "scope=",
    "scope=%20,",
    "scope",
    "scope=admin&",
    "scope=admin&scope=",
    "scope=admin&other=1",
    "&",
    "x=%00",
]


@pytest.mark.parametrize("query", MISCONFIGURED_QUERIES)
async def test_a_query_akener_does_not_understand_is_refused_as_misconfigured(
    client: httpx.AsyncClient, runtime: Runtime, query: str
) -> None:
    _, key = await make_key(runtime, "admin", scopes=["admin"])
    for headers in (bearer(key), {}):
        answer = await client.get(f"/authz?{query}", headers=headers)
        assert answer.status_code == 500
        assert answer.json()["error"]["code"] == "AUTHZ_MISCONFIGURED"
        assert json.loads(answer.headers["x-akener-error"]) == answer.json()
        assert answer.headers["x-akener-key-id"] == ""
        assert answer.headers["x-akener-scopes"] == ""
    # The same spellings under /authz/<path> belong to the client (Envoy) and are not read.
    assert (await client.get(f"/authz/x?{query}", headers=bearer(key))).status_code == 200


async def test_understood_queries_still_require_their_scopes(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    _, key = await make_key(runtime, "both", scopes=["a.read", "b.write"])
    for query in (
        "scope=a.read",
        "scope=a.read+b.write",
        "scope=a.read,b.write",
        "scope=b.write&scope=a.read",
    ):
        assert (await client.get(f"/authz?{query}", headers=bearer(key))).status_code == 200
    assert (await client.get("/authz?scope=a.read%20c", headers=bearer(key))).status_code == 403


async def test_a_misconfigured_query_is_logged_at_most_every_ten_seconds(
    app: AkenerApp, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    handler = app._authz
    assert isinstance(handler, ForwardAuth)

    def warnings() -> list[logging.LogRecord]:
        return [
            r for r in caplog.records if r.name == "akener.authz" and r.levelno == logging.WARNING
        ]

    with caplog.at_level(logging.WARNING, logger="akener.authz"):
        for _ in range(20):
            assert (await client.get("/authz?scopes=admin")).status_code == 500
        assert len(warnings()) == 1
        assert warnings()[0].query == "scopes=admin"  # type: ignore[attr-defined]
        assert handler._warned_at is not None
        handler._warned_at -= 9.5  # still inside the 10 s window
        await client.get("/authz?scopes=admin")
        assert len(warnings()) == 1
        handler._warned_at -= 1.0
        key = "akener_" + "ab" * 32  # a proxy forwarding a client's query could log a key
        await client.get(f"/authz?api_key={key}")
        assert len(warnings()) == 2
        assert key not in warnings()[1].query  # type: ignore[attr-defined]
