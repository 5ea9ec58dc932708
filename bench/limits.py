"""Limits on the hot path: /authz ratios to the raw ASGI floor, and shared-window accuracy.

Speed (server pinned to CPU 0, wrk to CPU 1, scenarios alternating with floor runs, as in
bench/run.py): an unlimited key, a key with one window on one process, and a key with one large
window shared through Redis (leased). Accuracy: 4 real processes offer 3 x the limit of a shared
window through Redis and the script prints admitted versus limit per window.

    .venv/bin/python bench/limits.py --quick
    .venv/bin/python bench/limits.py --accuracy-only

Redis: the machine's 127.0.0.1:6379, database 11 (flushed by this script, nothing else).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import run  # noqa: E402 (bench/run.py: servers, wrk, seeding)

REDIS_URL = "redis://127.0.0.1:6379/11"


async def _make_keys(database_url: str) -> dict[str, str]:
    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.keys import service
    from akener.keys.limits import Window
    from akener.runtime import Runtime
    from akener.settings import Settings

    settings = Settings(database_url=database_url, secret_key=run.SECRET, _env_file=None)  # type: ignore[call-arg]
    runtime = await Runtime.start(settings)
    keys = {}
    try:
        async with runtime.sessionmaker() as session:
            for name, windows in (
                ("small", [Window("requests", 10**12, 60)]),
                ("shared", [Window("requests", 10**9, 60)]),
            ):
                _, keys[name] = await service.create_key(
                    session, CLI_PRINCIPAL, name=f"bench {name}", scopes=[],
                    peppers=runtime.peppers, rate_limits=windows,
                )  # fmt: skip
            await session.commit()
    finally:
        await runtime.close()
    return keys


def speed(args: argparse.Namespace) -> None:
    """Ratios of /authz with limits to the floor, one run, side by side."""
    workdir = Path(tempfile.mkdtemp(prefix="akener-bench-limits-"))
    database_url = run.sqlite_url(workdir, 1000)
    valid = asyncio.run(run.prepare(database_url, 1000))
    keys = asyncio.run(_make_keys(database_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKENER_")}
    env |= {
        "AKENER_DATABASE_URL": database_url,
        "AKENER_SECRET_KEY": run.SECRET,
        "AKENER_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT / "src"),
    }
    ports = {name: run.free_port() for name in ("floor", "local", "redis")}
    servers = [
        run.start(run.server_command(args.server, "floor:app", ports["floor"], factory=False),
                  env, f"http://127.0.0.1:{ports['floor']}/"),
        run.start(run.server_command(args.server, "akener.app:create_app", ports["local"], True),
                  env, f"http://127.0.0.1:{ports['local']}/authz"),
        run.start(run.server_command(args.server, "akener.app:create_app", ports["redis"], True),
                  env | {"AKENER_REDIS_URL": REDIS_URL},
                  f"http://127.0.0.1:{ports['redis']}/authz"),
    ]  # fmt: skip
    scenarios = [
        ("authz, no limits", ports["local"], valid),
        ("authz, one window, one process", ports["local"], keys["small"]),
        ("authz, one window of 1e9 via Redis (leased)", ports["redis"], keys["shared"]),
    ]
    ratios: dict[str, list[float]] = {name: [] for name, _, _ in scenarios}
    rps: dict[str, list[float]] = {name: [] for name, _, _ in scenarios}
    try:
        for _, port, key in scenarios:
            run.wrk(f"http://127.0.0.1:{port}/authz", f"Authorization: Bearer {key}", 1, 32)
        for _ in range(args.rounds):
            for name, port, key in scenarios:
                header = f"Authorization: Bearer {key}"
                floor_rps, _, _ = run.wrk(
                    f"http://127.0.0.1:{ports['floor']}/", header, args.duration, args.connections
                )
                got, _, _ = run.wrk(
                    f"http://127.0.0.1:{port}/authz", header, args.duration, args.connections
                )
                ratios[name].append(got / floor_rps)
                rps[name].append(got)
    finally:
        for process in servers:
            process.terminate()
            process.wait(timeout=30)
    print(f"\n{args.server}, wrk -c{args.connections} -d{args.duration:g}s, {args.rounds} round(s)")
    print(f"{'scenario':48} {'req/s':>9} {'x floor':>8}")
    for name, _, _ in scenarios:
        rps_median = sorted(rps[name])[len(rps[name]) // 2]
        ratio = sorted(ratios[name])[len(ratios[name]) // 2]
        print(f"{name:48} {rps_median:9.0f} {ratio:8.2f}")


def _member(limit: int, period: int, offered: int, start_at: float, out: object) -> None:
    async def go() -> int:
        from akener.keys.limits import Window
        from akener.verify.limiter import Rule
        from akener.verify.shared import SharedWindows

        shared = SharedWindows.from_url(REDIS_URL)
        rule = Rule("k:bench-accuracy", Window("requests", limit, period))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        admitted = 0
        for i in range(offered):
            wait, _ = await shared.take((rule,))
            admitted += wait is None
            if i % 64 == 0:
                await asyncio.sleep(0)
        await shared.close()
        return admitted

    out.put(asyncio.run(go()))  # type: ignore[attr-defined]


def accuracy(windows: int) -> None:
    """4 processes offer 3 x the limit per window; prints admitted versus limit."""
    from redis import Redis

    Redis.from_url(REDIS_URL).flushdb()
    print("\nshared window through Redis, 4 processes, offered 3 x limit per window")
    print(f"{'limit':>8} {'admitted':>9} {'error':>7}")
    for limit in [10_000] * windows + [500]:
        period = 10
        start_at = (time.time() // period + 1) * period + 0.05  # the next window, all together
        queue: multiprocessing.Queue[int] = multiprocessing.Queue()
        members = [
            multiprocessing.Process(target=_member, args=(limit, period, 3 * limit // 4,
                                                          start_at, queue))
            for _ in range(4)
        ]  # fmt: skip
        for member in members:
            member.start()
        admitted = sum(queue.get(timeout=120) for _ in members)
        for member in members:
            member.join()
        print(f"{limit:8d} {admitted:9d} {100 * (admitted - limit) / limit:6.1f}%")


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one round, short runs")
    parser.add_argument("--accuracy-only", action="store_true", help="skip the speed part")
    parser.add_argument("--server", default="granian", choices=["granian", "uvicorn"])
    parser.add_argument("--duration", type=float, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--windows", type=int, default=3, help="accuracy windows to measure")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.windows = 1, 2, 1
    if not args.accuracy_only:
        speed(args)
    accuracy(args.windows)


if __name__ == "__main__":
    main()
