"""akener through a real PgBouncer in transaction mode (Debian's package), the listener direct.

PgBouncer of this version (1.18) hands each transaction to whichever server connection is free
and knows nothing of prepared statements, so ``AKENER_DB_STATEMENT_CACHE=false`` is needed;
the first test shows what happens without it. LISTEN needs a session of its own, so the
listener goes to PostgreSQL directly through ``AKENER_LISTEN_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from akener.db.errors import PREPARED_STATEMENTS
from akener.runtime import Runtime
from akener.settings import Settings
from akener.verify.listener import asyncpg_dsn
from tests import pgbouncer
from tests.conftest import LOCAL_NOWHERE, TEST_SECRET
from tests.factories import bearer, make_key
from tests.fleet import ConnectionSampler, mixed_load, revoke_across
from tests.pgbouncer import PgBouncer
from tests.servers import AkenerServer, akener_cli, akener_env

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(pgbouncer.available() is not None, reason=str(pgbouncer.available())),
]


def _through(bouncer: PgBouncer, settings: Settings) -> str:
    url = make_url(settings.database_url)
    assert url.port is not None
    return bouncer.url(url.database or "")


def test_named_statements_collide_behind_transaction_pooling_unless_the_cache_is_off(
    settings: Settings, tmp_path: Path, backend: str
) -> None:
    """One server connection for every client: the second CLI run finds the first one's
    statement names taken; with the cache off every run works."""
    url = make_url(settings.database_url)
    assert url.port is not None
    with PgBouncer(url.port, pool_size=1) as bouncer:
        through = _through(bouncer, settings)
        cached = akener_env(through, TEST_SECRET)
        first, second = (akener_cli(cached, tmp_path, "keys", "list") for _ in range(2))
        assert first.returncode == 0, first.stderr
        assert second.returncode == 1, "named statements did not collide: PgBouncer tracks them"
        assert PREPARED_STATEMENTS in second.stderr
        uncached = akener_env(through, TEST_SECRET, AKENER_DB_STATEMENT_CACHE="false")
        # Migrations too: their lock is held by a transaction, not a session.
        upgraded = akener_cli(uncached, tmp_path, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        for _ in range(2):
            run = akener_cli(uncached, tmp_path, "keys", "list")
            assert run.returncode == 0, run.stderr


async def test_create_verify_deactivate_and_revoke_through_pgbouncer(
    settings: Settings, tmp_path: Path, backend: str
) -> None:
    url = make_url(settings.database_url)
    assert url.port is not None
    with PgBouncer(url.port, pool_size=2) as bouncer:
        through = _through(bouncer, settings)
        pooled = Settings(  # type: ignore[call-arg]
            database_url=through,
            listen_database_url=settings.database_url,
            db_statement_cache=False,
            secret_key=TEST_SECRET,
            github_scanning_keys_url=LOCAL_NOWHERE,
            _env_file=None,
        )
        direct = await Runtime.start(pooled)  # start-up checks and writes through PgBouncer
        try:
            _, admin = await make_key(direct, "admin")
            keys = [(await make_key(direct, f"k{i}", scopes=[]))[1] for i in range(4)]
        finally:
            await direct.close()

        def env(host: str) -> dict[str, str]:
            # Each its own change counter directory: as on separate hosts, NOTIFY alone
            # tells one process of the other's changes.
            return akener_env(
                through,
                TEST_SECRET,
                AKENER_DB_STATEMENT_CACHE="false",
                AKENER_LISTEN_DATABASE_URL=settings.database_url,
                AKENER_CHANGE_COUNTER_DIR=str(tmp_path / host / "counter"),
                AKENER_USAGE_FLUSH_SECONDS="0.5",
            )

        with (
            AkenerServer(env("a"), tmp_path / "a") as a,
            AkenerServer(env("b"), tmp_path / "b") as b,
            ConnectionSampler(asyncpg_dsn(settings.database_url), url.database or "") as sampler,
        ):
            stop = asyncio.Event()
            load = asyncio.create_task(
                mixed_load([a.url, b.url], admin, keys, stop, verifiers=4, writers=8)
            )
            await asyncio.sleep(4)
            stop.set()
            report = await load
            assert not report.problems, report.problems[:10]
            assert report.statuses[("create", 201)] >= 8, report.statuses

            # A key cached by both, switched off through one: the other refuses within the
            # documented bound for other hosts.
            async with httpx.AsyncClient(timeout=30) as client:
                made = await client.post(
                    a.url + "/api/v1/keys", headers=bearer(admin), json={"name": "victim"}
                )
                assert made.status_code == 201, made.text
            refusal = await revoke_across(
                a.url, admin, [a.url, b.url], made.json()["id"], made.json()["key"]
            )
            assert not refusal.problems, refusal.problems
            assert refusal.late[a.url] == 0.0
            assert refusal.bound < 1.0, refusal.late

            # The CLI through PgBouncer too (a third host): both servers refuse its change.
            victim = keys[0]
            for server in (a, b):
                async with httpx.AsyncClient(timeout=30) as client:
                    ok = await client.get(server.url + "/authz", headers=bearer(victim))
                    assert ok.status_code == 200
            listed = akener_cli(env("cli"), tmp_path, "keys", "list", "--json")
            assert listed.returncode == 0, listed.stderr
            rows = [json.loads(line) for line in listed.stdout.splitlines()]
            key_id = next(row["id"] for row in rows if row["name"] == "k0")
            off = akener_cli(env("cli"), tmp_path, "keys", "deactivate", key_id)
            assert off.returncode == 0, off.stderr
            answered = time.perf_counter()
            async with httpx.AsyncClient(timeout=30) as client:
                for server in (a, b):
                    while True:
                        status = (
                            await client.get(server.url + "/authz", headers=bearer(victim))
                        ).status_code
                        if status == 401:
                            break
                        assert status == 200
                        assert time.perf_counter() - answered < 1.0
                        await asyncio.sleep(0.01)
            peaks = sampler.stop()
            logs = a.log_text() + b.log_text()
    # The listeners went to PostgreSQL directly, one per process; the pooled connections
    # reached it only through PgBouncer's two server connections.
    listeners = [n for n in peaks.by_name if n.startswith("akener-listener:")]
    assert len(listeners) == 2 and all(peaks.by_name[n] == 1 for n in listeners), peaks.by_name
    through_bouncer = peaks.total - len(listeners)
    assert through_bouncer <= 2, peaks.by_name
    assert "prepared statement" not in logs
    assert "Traceback" not in logs
