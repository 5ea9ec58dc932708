"""akener's hot path against a raw ASGI floor, measured side by side in one run.

The server under test is pinned to CPU 0 (``taskset -c 0``) and wrk to CPU 1; the floor
(bench/floor.py) and akener run under the same server with the same options, and the scenarios
alternate round by round so drift on a shared machine hits them all alike. See bench/README.md.

    .venv/bin/python bench/run.py --quick          # one key count, short runs: a minute or two
    .venv/bin/python bench/run.py                  # 1k and 1M keys, SQLite and PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SECRET = "bench-secret-" + "b" * 40
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Scenario:
    """One kind of request: ``which`` key it sends (valid, unknown or none) and, for a POST to
    the verify API, the key it asks about."""

    name: str
    path: str
    which: str | None
    verify: bool = False  # POST {"key": <the valid key>} as JSON


SCENARIOS = [
    Scenario("floor", "/", None),
    Scenario("authz valid", "/authz", "valid"),
    Scenario("authz unknown", "/authz", "unknown"),
    Scenario("authz no header", "/authz", None),
    Scenario("verify valid", "/api/v1/keys/verify", "valid", verify=True),
    Scenario("verify, caller unknown", "/api/v1/keys/verify", "unknown", verify=True),
    Scenario("whoami valid", "/api/v1/whoami", "valid"),
    Scenario("whoami unknown", "/api/v1/whoami", "unknown"),
    Scenario("whoami no header", "/api/v1/whoami", None),
    Scenario("key by id", "/api/v1/keys/{id}", "valid"),
    Scenario("key list", "/api/v1/keys", "valid"),
]


@dataclass
class Result:
    """One scenario's runs."""

    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    # requests/s divided by the floor's, measured right before this run
    ratio: list[float] = field(default_factory=list)

    def median(self) -> tuple[float, float, float, float]:
        """Median requests/s, p50 ms, p99 ms and ratio to the floor over the rounds."""
        return (
            statistics.median(self.rps),
            statistics.median(self.p50),
            statistics.median(self.p99),
            statistics.median(self.ratio),
        )


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- seeding -------------------------------------------------------------------------------------


def filler_rows(
    count: int, offset: int = 0
) -> list[tuple[str, str, str, int, str, str, str, str, str]]:
    """Stored keys nobody holds: random digests are all a lookup ever sees of a key."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    masked = "akener_" + "*" * 60 + "0000"
    return [
        (
            uuid.uuid4().hex,
            f"bench-{i}",
            secrets.token_hex(32),
            1,
            masked,
            "ACTIVE",
            "[]",
            now,
            "cli",
        )
        for i in range(offset, offset + count)
    ]


INSERT = (
    "INSERT INTO api_keys (id, name, digest, pepper_version, masked_key, status, scopes,"
    " created_at, created_by, request_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
)


def seed_sqlite(path: Path, count: int) -> None:
    """Bulk insert ``count`` filler keys in one transaction."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            for start in range(0, count, 100_000):
                conn.executemany(INSERT, filler_rows(min(100_000, count - start), start))
    finally:
        conn.close()


async def seed_postgres(url: str, count: int) -> None:
    """Bulk insert ``count`` filler keys with COPY."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        for start in range(0, count, 100_000):
            rows = [
                (
                    i,
                    n,
                    d,
                    v,
                    m,
                    s,
                    sc,
                    dt.datetime.fromisoformat(c).replace(tzinfo=dt.UTC),
                    b,
                    0,
                )
                for i, n, d, v, m, s, sc, c, b in filler_rows(min(100_000, count - start), start)
            ]
            await conn.copy_records_to_table(
                "api_keys",
                records=rows,
                columns=[
                    "id",
                    "name",
                    "digest",
                    "pepper_version",
                    "masked_key",
                    "status",
                    "scopes",
                    "created_at",
                    "created_by",
                    "request_count",
                ],
            )
        await conn.execute("ANALYZE api_keys")
    finally:
        await conn.close()


async def prepare(database_url: str, count: int) -> tuple[str, str]:
    """Migrate, seed ``count - 1`` fillers and one real key; returns its plaintext and id."""
    sys.path.insert(0, str(ROOT / "src"))
    from sqlalchemy.engine import make_url

    from akener.accounts.permissions import CLI_PRINCIPAL
    from akener.db.engine import make_engine
    from akener.db.migrate import upgrade
    from akener.keys import service
    from akener.runtime import Runtime
    from akener.settings import Settings

    engine = make_engine(database_url)
    await upgrade(engine)
    await engine.dispose()
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        seed_sqlite(Path(url.database or ""), count - 1)
    else:
        await seed_postgres(url.set(drivername="postgresql").render_as_string(False), count - 1)
    settings = Settings(database_url=database_url, secret_key=SECRET, _env_file=None)  # type: ignore[call-arg]
    runtime = await Runtime.start(settings)
    try:
        async with runtime.sessionmaker() as session:
            row, plaintext = await service.create_key(
                session,
                CLI_PRINCIPAL,
                name="bench valid key",
                scopes=["api_keys.read", "api_keys.verify"],
                peppers=runtime.peppers,
            )
            await session.commit()
    finally:
        await runtime.close()
    return plaintext, row.id


async def time_verifier(database_url: str, valid: str) -> dict[str, float]:
    """Microseconds per call of the in-process verification, cache warm."""
    from akener.keys import tokens
    from akener.runtime import Runtime
    from akener.settings import Settings

    settings = Settings(database_url=database_url, secret_key=SECRET, _env_file=None)  # type: ignore[call-arg]
    runtime = await Runtime.start(settings)
    try:
        verifier = runtime.verifier
        unknown = "akener_" + secrets.token_hex(32)
        for key in (valid, unknown):
            await verifier.lookup(key)
        pepper = runtime.peppers.by_version[runtime.peppers.current]
        fast = tokens.digester(pepper)
        n = 100_000
        per_call = {
            "format check": timeit.timeit(lambda: tokens.is_well_formed(valid), number=n),
            "digest, hmac.new": timeit.timeit(lambda: tokens.digest(valid, pepper), number=n),
            "digest, keyed HMAC copied": timeit.timeit(lambda: fast(valid), number=n),
            "cached() = freshness + digest + LRU: valid key": timeit.timeit(
                lambda: verifier.cached(valid), number=n
            ),
            "cached() = freshness + digest + LRU: unknown key": timeit.timeit(
                lambda: verifier.cached(unknown), number=n
            ),
        }
        return {name: seconds / n * 1e6 for name, seconds in per_call.items()}
    finally:
        await runtime.close()


# --- servers and wrk -----------------------------------------------------------------------------


def server_command(server: str, target: str, port: int, factory: bool) -> list[str]:
    """The command line serving ``target`` on ``port`` with ``server``."""
    if server == "uvicorn":
        command = [str(VENV_BIN / "uvicorn"), target, "--port", str(port)]
        command += ["--log-level", "warning", "--no-access-log", "--no-server-header"]
        return command + (["--factory"] if factory else ["--app-dir", str(ROOT / "bench")])
    command = [str(VENV_BIN / "granian"), "--interface", "asgi", "--port", str(port)]
    command += ["--workers", "1", "--log-level", "warning", "--no-ws"]
    return command + (
        ["--factory", target] if factory else ["--working-dir", str(ROOT / "bench"), target]
    )


def start(command: list[str], env: dict[str, str], probe: str) -> subprocess.Popen[bytes]:
    """Start a server pinned to CPU 0 and wait until ``probe`` answers."""
    import urllib.error
    import urllib.request

    process = subprocess.Popen(
        ["taskset", "-c", "0", *command],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(probe, timeout=1)  # noqa: S310 (loopback URL we built)
            return process
        except urllib.error.HTTPError:
            return process
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {' '.join(command)}")


WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_PCT = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    url: str, header: str | None, seconds: float, connections: int, script: Path | None = None
) -> tuple[float, float, float]:
    """Requests/s, p50 ms and p99 ms of one wrk run pinned to CPU 1 (``script``: a wrk Lua
    script setting the method and body)."""
    command = [
        "taskset",
        "-c",
        "1",
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
    ]
    if header:
        command += ["-H", header]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    match = WRK_RPS.search(out)
    if match is None:
        raise RuntimeError(out)
    pct = {p: float(v) * UNIT[u] for p, v, u in WRK_PCT.findall(out)}
    return float(match.group(1)), pct["50"], pct["99"]


def measure(
    database_url: str, valid: str, key_id: str, server: str, args: argparse.Namespace
) -> dict[str, Result]:
    """Run every scenario against a seeded database, alternating, ``rounds`` times."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKENER_")}
    env |= {
        "AKENER_DATABASE_URL": database_url,
        "AKENER_SECRET_KEY": SECRET,
        "AKENER_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT / "src"),
    }
    floor_port, akener_port = free_port(), free_port()
    floor = start(
        server_command(server, "floor:app", floor_port, factory=False),
        env,
        f"http://127.0.0.1:{floor_port}/",
    )
    akener = start(
        server_command(server, "akener.app:create_app", akener_port, factory=True),
        env,
        f"http://127.0.0.1:{akener_port}/authz",
    )
    credentials = {"valid": valid, "unknown": "akener_" + secrets.token_hex(32)}
    script = Path(tempfile.mkdtemp(prefix="akener-wrk-")) / "verify.lua"
    body = json.dumps({"key": valid})
    script.write_text(
        f"wrk.method = \"POST\"\nwrk.body = '{body}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    results = {scenario.name: Result() for scenario in SCENARIOS}

    def run(scenario: Scenario, port: int, seconds: float) -> tuple[float, float, float]:
        path = "/" if port == floor_port else scenario.path.replace("{id}", key_id)
        which = scenario.which
        header = f"Authorization: Bearer {credentials[which]}" if which else None
        lua = script if scenario.verify else None
        return wrk(f"http://127.0.0.1:{port}{path}", header, seconds, args.connections, lua)

    try:
        for scenario in SCENARIOS[1:]:  # a benchmark of refusals would be worthless
            if scenario.which == "valid":
                check(akener_port, scenario.path.replace("{id}", key_id), valid, scenario.verify)
        for scenario in SCENARIOS:  # warm up: caches, connection pools, JIT-less paths
            run(scenario, floor_port if scenario.name == "floor" else akener_port, 1)
        for _ in range(args.rounds):
            for scenario in SCENARIOS[1:]:
                # Each scenario right after a floor run: its ratio compares two measurements a
                # few seconds apart, so load from elsewhere on the machine mostly cancels out.
                # The floor gets the very same request (header, method and body; it ignores
                # them), so the ratio shows akener's own work, not the server's cost of parsing.
                floor_rps, p50, p99 = run(scenario, floor_port, args.duration)
                results["floor"].rps.append(floor_rps)
                results["floor"].p50.append(p50)
                results["floor"].p99.append(p99)
                results["floor"].ratio.append(1.0)
                rps, p50, p99 = run(scenario, akener_port, args.duration)
                result = results[scenario.name]
                result.rps.append(rps)
                result.p50.append(p50)
                result.p99.append(p99)
                result.ratio.append(rps / floor_rps)
    finally:
        for process in (floor, akener):
            process.terminate()
            process.wait(timeout=30)
    return results


def check(port: int, path: str, key: str, verify: bool) -> None:
    """Fail unless akener answers ``path`` with a 200 for ``key``."""
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps({"key": key}).encode() if verify else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        if answer.status != 200 or (verify and not json.load(answer)["valid"]):
            raise RuntimeError(f"{path} does not accept the valid key")


# --- databases -----------------------------------------------------------------------------------


def sqlite_url(workdir: Path, count: int) -> str:
    """A fresh SQLite file for one key count."""
    path = workdir / f"bench-{count}.db"
    return f"sqlite+aiosqlite:///{path}"


async def pg_admin(admin_url: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def main() -> None:
    """Parse flags, run every combination, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1k keys, 2 s runs, 1 round, SQLite")
    parser.add_argument("--keys", default="1000,1000000", help="comma separated key counts")
    parser.add_argument("--duration", type=float, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds over every scenario")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--servers", default="both", help="uvicorn, granian or both")
    parser.add_argument(
        "--only", default="", help="comma separated scenario name prefixes (default: all)"
    )
    parser.add_argument("--pg-url", default=os.environ.get("AKENER_BENCH_PG_URL", PG_DEFAULT))
    args = parser.parse_args()
    if args.quick:
        args.keys, args.duration, args.rounds, args.databases = "1000", 2, 1, "sqlite"
    if (os.cpu_count() or 1) < 2:
        sys.exit(
            "the benchmark pins the server and wrk to two different CPUs; this machine has one"
        )
    for tool in ("taskset", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing (scripts/system-deps installs it)")
    if args.only:
        prefixes = tuple(p.strip() for p in args.only.split(","))
        SCENARIOS[1:] = [s for s in SCENARIOS[1:] if s.name.startswith(prefixes)]
    servers = ["uvicorn", "granian"] if args.servers == "both" else [args.servers]
    counts = [int(c) for c in args.keys.split(",")]
    rows: list[str] = []
    micro_rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="akener-bench-") as tmp:
        for database in args.databases.split(","):
            for count in counts:
                if database == "sqlite":
                    url = sqlite_url(Path(tmp), count)
                    Path(url.split("///", 1)[1]).unlink(missing_ok=True)
                else:
                    name = f"akener_bench_{os.getpid()}"
                    admin = args.pg_url
                    asyncio.run(pg_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    asyncio.run(pg_admin(admin, f'CREATE DATABASE "{name}"'))
                    url = admin.rsplit("/", 1)[0] + "/" + name
                    url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
                try:
                    print(f"==> {database}: seeding {count:,} keys", file=sys.stderr, flush=True)
                    valid, key_id = asyncio.run(prepare(url, count))
                    micro = asyncio.run(time_verifier(url, valid))
                    micro_rows += [
                        f"| {database}, {count:,} keys | {k} | {v:.2f} |" for k, v in micro.items()
                    ]
                    for server in servers:
                        label = f"{database}, {count:,} keys, {server}"
                        print(f"==> {label}", file=sys.stderr, flush=True)
                        results = measure(url, valid, key_id, server, args)
                        for scenario, result in results.items():
                            rps, p50, p99, ratio = result.median()
                            row = (
                                f"| {label} | {scenario} | {rps:,.0f} | {p50:.2f} | {p99:.2f} |"
                                f" {ratio:.2f} |"
                            )
                            rows.append(row)
                            print(row, file=sys.stderr, flush=True)
                finally:
                    if database != "sqlite":
                        asyncio.run(
                            pg_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                        )
    header = (
        f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.rounds} round(s), each scenario"
        " right after a floor run; medians (x floor: median of those pairs' ratios);"
        " server on CPU 0, wrk on CPU 1\n\n"
        "| setup | scenario | requests/s | p50 ms | p99 ms | x floor |\n|---|---|---|---|---|---|"
    )
    table = "\n".join(
        [header, *rows, "", "| setup | in-process call | µs |", "|---|---|---|", *micro_rows]
    )
    print(table)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    (out / f"{stamp}.md").write_text(table + "\n")
    (out / f"{stamp}.json").write_text(json.dumps({"args": vars(args)}, indent=2))


if __name__ == "__main__":
    main()
