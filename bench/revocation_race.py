"""How soon a switched-off key is refused, on the host that switched it off and on another.

Two ``akener serve`` instances with two workers each run against one PostgreSQL database. "This
host" is the instance the change goes through; "other host" is an instance with its own change
counter directory, which is what a second machine is. Each trial makes a key, probes it from
``--connections`` connections per instance, switches it off through this host's API and keeps
probing. It reports requests accepted after the answer on this host (the guarantee: none) and,
for the other host, how long after the answer it still accepted the key (NOTIFY's bound).

    .venv/bin/python bench/revocation_race.py                 # 200 trials
    .venv/bin/python bench/revocation_race.py --trials 50 --connections 16

It creates its own database (dropped at the end) and removes its counter files.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url  # noqa: E402
from tests.race import revocation_trial  # noqa: E402
from tests.servers import AkenerServer, akener_cli, akener_env  # noqa: E402

SECRET = "bench-secret-" + "b" * 40
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"


def _psql(admin_url: str, statement: str) -> None:
    subprocess.run(["psql", admin_url, "-qc", statement], check=True, capture_output=True)


async def run(args: argparse.Namespace) -> int:
    """Run the trials; 1 when this host ever accepted a key after the answer."""
    name = f"akener_race_{uuid.uuid4().hex[:8]}"
    admin_url = args.pg_url
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    work = Path(tempfile.mkdtemp(prefix="akener-race-"))
    _psql(admin_url, f'CREATE DATABASE "{name}"')
    try:
        here = akener_env(url, SECRET, AKENER_CHANGE_COUNTER_DIR=str(work / "host-a"))
        there = akener_env(url, SECRET, AKENER_CHANGE_COUNTER_DIR=str(work / "host-b"))
        assert akener_cli(here, work, "db", "upgrade").returncode == 0
        grants = [a for scope in ("api_keys.create", "api_keys.write") for a in ("--scope", scope)]
        made = akener_cli(here, work, "keys", "create", "--name", "admin", *grants)
        assert made.returncode == 0, made.stderr
        admin = made.stdout.strip()
        late, windows = 0, []
        with (
            AkenerServer(here, work / "a", workers=2) as a,
            AkenerServer(there, work / "b", workers=2) as b,
        ):
            for trial in range(args.trials):
                answered, seen = await revocation_trial(
                    a.url,
                    admin,
                    {"here": a.url, "there": b.url},
                    connections=args.connections,
                    name=f"race{trial}",
                )
                late += len(seen["here"].accepted_after(answered))
                windows.append(seen["there"].window(answered) * 1000)
        windows.sort()
        print(f"trials: {args.trials}, {args.connections} connections per instance")
        print(f"this host: requests accepted after the answer: {late}")
        print(
            "other host: accepted up to (ms) after the answer: "
            f"median {statistics.median(windows):.1f}, "
            f"p95 {windows[int(len(windows) * 0.95) - 1]:.1f}, max {windows[-1]:.1f}"
        )
        return 1 if late else 0
    finally:
        _psql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--connections", type=int, default=8, help="per instance")
    parser.add_argument("--pg-url", default=PG_DEFAULT)
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
