"""Metrics and health on real ``akener serve`` processes with two workers: numbers added up
across the workers, the per-server directory, and readiness while a PostgreSQL of the test's
own is frozen, stopped and started again (tests/pgcluster.py; never the shared server)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import pgcluster
from tests.conftest import TEST_SECRET
from tests.factories import bearer
from tests.integration.test_metrics import samples
from tests.servers import AkenerServer, akener_cli, akener_env, process_tree

LOCAL = {"AKENER_METRICS_ALLOWED_IPS": "127.0.0.1"}
TIMEOUTS = {
    "AKENER_DB_CONNECT_TIMEOUT_SECONDS": "1",
    "AKENER_DB_QUERY_TIMEOUT_SECONDS": "1",
    "AKENER_DB_POOL_TIMEOUT_SECONDS": "1",
    "AKENER_LISTENER_CHECK_SECONDS": "1",
}
BOUND = 3 * 1 + 2.0  # pool + connect + query timeouts, plus room for a busy machine


def _metrics(url: str, **kw: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(url + "/metrics", timeout=30, **kw)  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text
    return samples(answer.text)


def _authz(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], code: str) -> float:
    return found.get(("akener_requests_total", (("code", code), ("endpoint", "authz"))), 0)


def _wait(check: object, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.2)


def _our_directory(pids: set[int]) -> list[Path]:
    """The metrics directories under /dev/shm holding a snapshot of one of ``pids``."""
    return [
        d
        for d in Path("/dev/shm").glob("akener-metrics-*")
        if any(int(f.name.split("-")[1]) in pids for f in d.glob("process-*.json"))
    ]


@pytest.mark.slow
def test_checks_are_counted_across_two_workers(tmp_path: Path) -> None:
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm")
    env = akener_env(None, TEST_SECRET)
    with AkenerServer(env, tmp_path, workers=2) as server:
        created = akener_cli(
            env, tmp_path, "keys", "create", "--name", "scraper", "--scope", "metrics.read"
        )
        assert created.returncode == 0, created.stderr
        reader = created.stdout.strip()
        scrape = {"headers": bearer(reader)}
        _wait(
            lambda: _metrics(server.url, **scrape)[("akener_processes", (("state", "live"),))] == 2
        )
        time.sleep(1.2)  # every worker has published what it counted so far
        before = _authz(_metrics(server.url, **scrape), "401")
        sent = 80
        for _ in range(sent):  # a new connection each: the workers share them out
            assert httpx.get(server.url + "/authz").status_code == 401
        _wait(lambda: _authz(_metrics(server.url, **scrape), "401") - before == sent, 10)
        time.sleep(1.2)
        assert _authz(_metrics(server.url, **scrape), "401") - before == sent  # never more
        found = httpx.get(server.url + "/metrics", headers=scrape["headers"]).text
        assert reader not in found and reader.removeprefix("akener_") not in found
        # The directory akener serve made: private, one file per worker.
        pids = process_tree(server.process.pid)  # type: ignore[union-attr]
        ours = _our_directory(pids)
        assert len(ours) == 1
        assert ours[0].stat().st_mode & 0o777 == 0o700
        files = list(ours[0].glob("process-*.json"))
        assert len({int(f.name.split("-")[1]) for f in files} & pids) == 2
    assert not ours[0].exists()  # removed when the server stopped


@pytest.fixture(scope="module")
def cluster() -> Iterator[pgcluster.PgCluster]:
    """A private cluster for this module."""
    reason = pgcluster.available()
    if reason:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(reason)
    with pgcluster.PgCluster() as started:
        yield started


def _ready(url: str) -> tuple[int, dict[str, object], float]:
    started = time.monotonic()
    answer = httpx.get(url + "/readyz", timeout=60)
    return answer.status_code, answer.json(), time.monotonic() - started


@pytest.mark.slow
def test_readyz_follows_the_database_and_never_hangs(
    cluster: pgcluster.PgCluster, tmp_path: Path
) -> None:
    env = akener_env(cluster.url, TEST_SECRET, **LOCAL, **TIMEOUTS)
    with AkenerServer(env, tmp_path, workers=2) as server:
        _wait(lambda: _ready(server.url)[1]["checks"] == {  # type: ignore[index]
            "database": "ok", "migrations": "current", "listener": "up"
        })  # fmt: skip
        # Each worker publishes its numbers once a second: both listeners show up soon after.
        up = ("akener_listener_processes", (("state", "up"),))
        _wait(lambda: _metrics(server.url).get(up) == 2)
        found = _metrics(server.url)
        assert found[("akener_listener_up", ())] == 1

        cluster.freeze()
        try:
            status, body, took = _ready(server.url)
            health = httpx.get(server.url + "/healthz", timeout=5)
        finally:
            cluster.thaw()
        assert status == 503 and body["status"] == "not ready", body
        assert took < BOUND, took
        assert health.status_code == 200

        cluster.stop()
        status, body, took = _ready(server.url)
        assert status == 503
        assert body["checks"]["database"] in ("unreachable", "timeout")  # type: ignore[index]
        assert took < BOUND
        assert httpx.get(server.url + "/healthz").status_code == 200
        # /metrics still answers (for an allowed address): the database and listeners are down.
        _wait(lambda: _metrics(server.url).get(("akener_listener_up", ())) == 0)
        assert _metrics(server.url)[("akener_database_up", ())] == 0

        cluster.start()
        _wait(lambda: _ready(server.url)[0] == 200, 30)
    assert "Traceback" not in server.log_text()
