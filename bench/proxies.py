"""Each documented proxy with akener as its auth server against the same proxy with the raw
floor app (bench/floor.py) as its auth server, side by side in one run.

The proxies run the exact configurations of docs/forward-auth.md (read by the test modules in
tests/integration/, so the benchmark and the tests cannot drift from the docs). The auth server
(akener or the floor, under the same server) is pinned to CPU 0; the proxy, the upstream (another
floor) and wrk share CPU 1. Both setups run at once and alternate round by round, so the ratio
"proxy + akener / proxy + floor" isolates akener's part: the proxy's own subrequest costs the
same on both sides. See bench/README.md.

    .venv/bin/python bench/proxies.py                      # nginx, Traefik, Caddy and Envoy
    .venv/bin/python bench/proxies.py --proxies nginx,caddy --rounds 3 --duration 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "bench")]

import run  # noqa: E402 (bench/run.py: seeding, servers, wrk)

PROXIES = ("nginx", "traefik", "caddy", "envoy")


def _any_answer(module: Any) -> None:
    """The test modules wait for akener's refusal; the floor allows everything: any answer but
    a 404 (Traefik's answer until its routers are loaded)."""
    wait = module.wait_until_up
    module.wait_until_up = lambda process, url, log, ready: wait(
        process, url, log, ready=lambda status: status != 404
    )


def proxy_runner(name: str, workdir: Path, upstream: int) -> Callable[[int], Any]:
    """A function starting proxy ``name`` (documented configuration) in front of the auth
    server on a port; a context manager giving the proxy's URL."""
    from tests.servers import free_port

    if name == "nginx":
        from tests.integration import test_nginx as nginx

        _any_answer(nginx)
        return lambda auth: nginx.running_nginx(
            workdir / f"nginx-{auth}",
            nginx.documented_config(port=free_port(), akener=auth, upstream=upstream),
        )
    if name == "traefik":
        from tests.integration import test_traefik as traefik

        _any_answer(traefik)
        return lambda auth: traefik.running_traefik(
            workdir / f"traefik-{auth}", traefik.documented_config(akener=auth, upstream=upstream)
        )
    if name == "caddy":
        from tests.integration import test_caddy as caddy

        _any_answer(caddy)
        return lambda auth: caddy.running_caddy(
            workdir / f"caddy-{auth}",
            caddy.documented_config(port=free_port(), akener=auth, upstream=upstream),
        )
    from tests.integration import test_envoy as envoy

    _any_answer(envoy)
    return lambda auth: envoy.running_envoy(
        workdir / f"envoy-{auth}",
        envoy.documented_config(port=free_port(), akener=auth, upstream=upstream),
    )


@contextmanager
def server(target: str, factory: bool, env: dict[str, str], cpu: str) -> Iterator[int]:
    """``target`` under granian on one CPU; gives its port."""
    port = run.free_port()
    command = run.server_command("granian", target, port, factory=factory)
    probe = f"http://127.0.0.1:{port}/authz" if factory else f"http://127.0.0.1:{port}/"
    process = run.start(["taskset", "-c", cpu, *command], env, probe)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    """Parse flags, run every proxy, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--proxies", default=",".join(PROXIES))
    parser.add_argument("--duration", type=float, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("the benchmark pins the auth server and the rest to two different CPUs")
    names = [name.strip() for name in args.proxies.split(",")]
    with tempfile.TemporaryDirectory(prefix="akener-bench-proxies-") as tmp:
        url = run.sqlite_url(Path(tmp), 1000)
        valid, _ = asyncio.run(run.prepare(url, 1000))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AKENER_")}
        env |= {
            "AKENER_DATABASE_URL": url,
            "AKENER_SECRET_KEY": run.SECRET,
            "AKENER_LOG_LEVEL": "warning",
            "PYTHONPATH": str(ROOT / "src"),
        }
        header = f"Authorization: Bearer {valid}"
        rows = []
        with ExitStack() as stack:
            # run.start pins with "taskset -c 0"; the outer taskset picks the CPU.
            akener = stack.enter_context(server("akener.app:create_app", True, env, "0"))
            floor = stack.enter_context(server("floor:app", False, env, "0"))
            upstream = stack.enter_context(server("floor:app", False, env, "1"))
            os.sched_setaffinity(0, {1})  # the proxies started below inherit CPU 1
            for name in names:
                start = proxy_runner(name, Path(tmp), upstream)
                with ExitStack() as proxies:
                    urls = {
                        "akener": proxies.enter_context(_started(start, akener)),
                        "floor": proxies.enter_context(_started(start, floor)),
                    }
                    rows.append(measure(name, urls, header, args))
                    print(rows[-1], file=sys.stderr, flush=True)
    print(
        f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.rounds} round(s) alternating;"
        " auth server (akener or the floor, granian) on CPU 0; proxy, upstream floor and wrk on"
        " CPU 1; medians\n\n"
        "| proxy | proxy + floor requests/s | proxy + akener requests/s | akener p99 ms |"
        " x (proxy + floor) |\n|---|---|---|---|---|"
    )
    print("\n".join(rows))


def _started(start: Callable[[int], Any], auth: int) -> AbstractContextManager[str]:
    started: AbstractContextManager[str] = start(auth)
    return started


def _check(url: str, header: str) -> None:
    import urllib.request

    name, value = header.split(": ", 1)
    request = urllib.request.Request(url, headers={name: value})  # noqa: S310 (loopback)
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        if answer.status != 200:
            raise RuntimeError(f"{url} answers {answer.status}")


def measure(name: str, urls: dict[str, str], header: str, args: argparse.Namespace) -> str:
    """Alternate the two setups; one table row."""
    rps: dict[str, list[float]] = {"akener": [], "floor": []}
    p99: list[float] = []
    ratios: list[float] = []
    for which in ("floor", "akener"):  # warm up: connections to the auth server, caches
        _check(urls[which] + "/orders", header)
        run.wrk(urls[which] + "/orders", header, 1, args.connections)
    for _ in range(args.rounds):
        floor_rps, _, _ = run.wrk(
            urls["floor"] + "/orders", header, args.duration, args.connections
        )
        akener_rps, _, akener_p99 = run.wrk(
            urls["akener"] + "/orders", header, args.duration, args.connections
        )
        rps["floor"].append(floor_rps)
        rps["akener"].append(akener_rps)
        p99.append(akener_p99)
        ratios.append(akener_rps / floor_rps)
    return (
        f"| {name} | {statistics.median(rps['floor']):,.0f} |"
        f" {statistics.median(rps['akener']):,.0f} | {statistics.median(p99):.2f} |"
        f" {statistics.median(ratios):.2f} |"
    )


if __name__ == "__main__":
    main()
