"""/metrics, /healthz and /readyz in process, on both databases: who may read the metrics, what
they say, and readiness against the schema version."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from akener.app import AkenerApp
from akener.authz.handler import ForwardAuth
from akener.settings import Settings
from tests.conftest import LOCAL_NOWHERE, TEST_SECRET
from tests.factories import bearer, make_key

NAMES = [
    "akener_build_info",
    "akener_processes",
    "akener_requests",
    "akener_request_duration_seconds",
    "akener_cache_lookups",
    "akener_cache_entries",
    "akener_usage_flush_lag_seconds",
    "akener_usage_pending_requests",
    "akener_usage_flush_failures",
    "akener_usage_lost_requests",
    "akener_db_pool_in_use",
    "akener_db_pool_size",
    "akener_database_up",
    "akener_webhook_deliveries",
    "akener_webhook_pending_events",
    "akener_webhook_oldest_pending_seconds",
]


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text body, by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def _app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = AkenerApp(settings)
    async with application.running():
        transport = httpx.ASGITransport(app=application)  # the peer is 127.0.0.1
        async with httpx.AsyncClient(transport=transport, base_url="http://akener.test") as c:
            c.app = application  # type: ignore[attr-defined]
            yield c


@pytest.fixture
async def open_to_localhost(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app whose /metrics is open to 127.0.0.1 without a key."""
    async for c in _app(settings.model_copy(update={"metrics_allowed_ips": "127.0.0.1/32"})):
        yield c


async def test_healthz_is_always_200_and_readyz_says_ready(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["migrations"] == "current"
    assert (await client.post("/readyz")).status_code == 405
    assert (await client.head("/healthz")).status_code == 200


async def test_metrics_needs_a_key_holding_metrics_read(
    app: AkenerApp, client: httpx.AsyncClient
) -> None:
    _, reader = await make_key(app.runtime, "metrics reader", scopes=["metrics.read"])
    _, other = await make_key(app.runtime, "no metrics", scopes=["api_keys.read"])
    missing = await client.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "UNAUTHORIZED"
    unknown = await client.get("/metrics", headers=bearer("akener_" + "0" * 64))
    assert unknown.status_code == 401
    forbidden = await client.get("/metrics", headers=bearer(other))
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "FORBIDDEN"
    assert "# HELP" not in forbidden.text
    answer = await client.get("/metrics", headers=bearer(reader))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = {family.name for family in text_string_to_metric_families(answer.text)}
    assert set(NAMES) <= found
    # No key, digest or name is ever a label: the secrets of both keys stay out.
    for secret in (reader, other, reader.removeprefix("akener_"), other.removeprefix("akener_")):
        assert secret not in answer.text
    assert "metrics reader" not in answer.text


async def test_a_forged_forwarded_address_does_not_open_metrics(settings: Settings) -> None:
    # 127.0.0.1 is a trusted proxy by default, and the header names an allowed address: the
    # allowlist still sees only the socket's address.
    opened = settings.model_copy(update={"metrics_allowed_ips": "203.0.113.7"})
    async for c in _app(opened):
        for header in ("X-Forwarded-For", "X-Real-IP"):
            answer = await c.get("/metrics", headers={header: "203.0.113.7"})
            assert answer.status_code == 401, header
        forwarded = await c.get("/metrics", headers={"Forwarded": "for=203.0.113.7"})
        assert forwarded.status_code == 401


async def test_an_allowed_address_reads_metrics_without_a_key(
    open_to_localhost: httpx.AsyncClient,
) -> None:
    answer = await open_to_localhost.get("/metrics")
    assert answer.status_code == 200
    assert "akener_requests_total" in answer.text or "akener_requests" in answer.text


async def test_answers_are_counted_by_endpoint_and_status(
    open_to_localhost: httpx.AsyncClient,
) -> None:
    app: AkenerApp = open_to_localhost.app  # type: ignore[attr-defined]
    _, key = await make_key(app.runtime, "counted", scopes=["api_keys.read"])
    for _ in range(3):
        assert (await open_to_localhost.get("/authz", headers=bearer(key))).status_code == 200
    assert (await open_to_localhost.get("/authz")).status_code == 401
    assert (await open_to_localhost.get("/api/v1/whoami", headers=bearer(key))).status_code == 200
    verify = await open_to_localhost.post(
        "/api/v1/keys/verify", headers=bearer(key), json={"key": key}
    )
    assert verify.status_code == 403  # the caller lacks api_keys.verify
    _, checker = await make_key(app.runtime, "checker", scopes=["api_keys.verify"])
    for checked in (key, "akener_" + "1" * 64):
        answer = await open_to_localhost.post(
            "/api/v1/keys/verify", headers=bearer(checker), json={"key": checked}
        )
        assert answer.status_code == 200
    found = samples((await open_to_localhost.get("/metrics")).text)

    def count(endpoint: str, code: str) -> float:
        labels = (("code", code), ("endpoint", endpoint))
        return found.get(("akener_requests_total", labels), 0)

    assert count("authz", "200") == 3
    assert count("authz", "401") == 1
    assert count("api", "200") == 1
    assert count("verify", "403") == 1
    assert count("verify", "200") == 2
    assert found[("akener_verify_verdicts_total", (("verdict", "VALID"),))] == 1
    assert found[("akener_verify_verdicts_total", (("verdict", "NOT_FOUND"),))] == 1
    assert count("api", "403") == 0
    histogram = found[
        (
            "akener_request_duration_seconds_bucket",
            (("code", "200"), ("endpoint", "authz"), ("le", "+Inf")),
        )
    ]
    assert histogram == 3
    # The first check read the database, the two others came from the cache.
    assert found[("akener_cache_lookups_total", (("result", "hit"),))] >= 2
    assert found[("akener_cache_lookups_total", (("result", "miss"),))] >= 1
    assert found[("akener_cache_entries", (("kind", "key"),))] >= 1
    assert found[("akener_database_up", ())] == 1
    assert found[("akener_processes", (("state", "live"),))] == 1


async def test_metrics_off_means_404_and_an_untimed_authz(settings: Settings) -> None:
    async for c in _app(settings.model_copy(update={"metrics_enabled": False})):
        app: AkenerApp = c.app  # type: ignore[attr-defined]
        answer = await c.get("/metrics")
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "NOT_FOUND"
        assert isinstance(app._authz, ForwardAuth)
        assert app._authz.observe is None  # nothing timed on the hot path
        assert (await c.get("/readyz")).status_code == 200


async def test_readyz_is_503_when_migrations_are_behind_and_200_when_newer(
    app: AkenerApp, client: httpx.AsyncClient
) -> None:
    async with app.runtime.engine.begin() as conn:
        head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        behind = await client.get("/readyz")
        assert behind.status_code == 503
        assert behind.json() == {
            "status": "not ready",
            "checks": {
                "database": "ok",
                "migrations": "behind",
                "listener": behind.json()["checks"]["listener"],
            },
        }
        assert (await client.get("/healthz")).status_code == 200
        async with app.runtime.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
        newer = await client.get("/readyz")
        assert newer.status_code == 200  # a rolling upgrade: this version runs on it
        assert newer.json()["checks"]["migrations"] == "newer"
    finally:
        async with app.runtime.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})


async def test_the_webhook_queue_is_counted(open_to_localhost: httpx.AsyncClient) -> None:
    from akener.events.models import DeliveryState, OutboxEvent, WebhookDelivery, WebhookEndpoint

    app: AkenerApp = open_to_localhost.app  # type: ignore[attr-defined]
    runtime = app.runtime
    sealed, version = runtime.box.seal("whsec_" + "a" * 32)
    async with runtime.sessionmaker() as session:
        endpoint = WebhookEndpoint(
            url="http://127.0.0.1:9/hook",  # nothing listens: the delivery stays pending
            events=["key.created"],
            sealed_secret=sealed,
            secret_version=version,
            created_by="test",
        )
        session.add(endpoint)
        events = [OutboxEvent(type="key.created", key_id=None, payload={}) for _ in range(2)]
        session.add_all(events)
        await session.flush()
        session.add(WebhookDelivery(endpoint_id=endpoint.id, event_id=events[0].id))
        session.add(WebhookDelivery(endpoint_id=endpoint.id, event_id=events[0].id))
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id, event_id=events[1].id, state=DeliveryState.FAILED
            )
        )
        await session.commit()
    found = samples((await open_to_localhost.get("/metrics")).text)
    assert found[("akener_webhook_deliveries", (("state", "pending"),))] == 2
    assert found[("akener_webhook_deliveries", (("state", "failed"),))] == 1
    assert found[("akener_webhook_pending_events", ())] == 1
    assert found[("akener_webhook_oldest_pending_seconds", ())] >= 0


async def test_usage_flush_failures_and_losses_are_counted(
    open_to_localhost: httpx.AsyncClient,
) -> None:
    app: AkenerApp = open_to_localhost.app  # type: ignore[attr-defined]
    usage = app.runtime.usage
    usage.record("no-such-key-but-counted")

    async def refuse(*_args: object, **_kw: object) -> None:
        raise OSError("the database is away")

    real_write = usage._write
    usage._write = refuse  # type: ignore[method-assign]
    try:
        assert not await usage.flush()
        await usage.close(within=0)  # gives up at once: the pending request is lost
    finally:
        usage._write = real_write  # type: ignore[method-assign]
    found = samples((await open_to_localhost.get("/metrics")).text)
    assert found[("akener_usage_flush_failures_total", ())] >= 2
    assert found[("akener_usage_lost_requests_total", ())] == 1
    assert found[("akener_usage_pending_requests", ())] == 1


async def test_readyz_is_503_once_the_sqlite_file_is_replaced(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "akener.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{path}",
        secret_key=TEST_SECRET,
        _env_file=None,
        github_scanning_keys_url=LOCAL_NOWHERE,
    )
    async for client in _app(settings):
        assert (await client.get("/readyz")).status_code == 200
        copy = tmp_path / "copy.db"
        shutil.copy(path, copy)
        os.replace(copy, path)  # a restore over the running database
        answer = await client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["checks"]["database"] == "replaced"
        assert (await client.get("/healthz")).status_code == 200
