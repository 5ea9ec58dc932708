"""How fast the ``akener`` command answers: ``akener --help`` and ``akener keys list``.

Like hyperfine: each command runs as a fresh process, a few warm-up runs first (so the files are
in the page cache), then ``--runs`` timed runs, alternating between the commands so a machine
that gets busier slows both alike. Each run is pinned to one CPU with ``taskset``. Prints the
median, the fastest and the slowest wall time, and the median's ratio to the target (issue 9:
0.3 s for ``--help``, 0.8 s for ``keys list``; a ratio of 1.0 or less meets it).

    .venv/bin/python bench/cli_startup.py            # 20 runs each
    .venv/bin/python bench/cli_startup.py --runs 50 --cpu 1
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AKENER = Path(sys.executable).with_name("akener")
TARGETS = {"akener --help": 0.3, "akener keys list": 0.8}
ARGS = {"akener --help": ["--help"], "akener keys list": ["keys", "list"]}


def environment(workdir: Path) -> dict[str, str]:
    """A clean environment for an installation in ``workdir`` (SQLite, a fixed secret)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKENER_")}
    env["AKENER_DATABASE_URL"] = f"sqlite:///{workdir}/akener.db"
    env["AKENER_SECRET_KEY"] = "bench-" + "s" * 40
    return env


def run_once(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run, in seconds; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    """Measure both commands and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per command")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per command first")
    parser.add_argument("--cpu", type=int, default=0, help="the CPU taskset pins each run to")
    parser.add_argument("--keys", type=int, default=20, help="keys in the database listed")
    args = parser.parse_args()
    pin = ["taskset", "-c", str(args.cpu)] if shutil.which("taskset") else []
    if not pin:
        print("note: taskset not found; runs are not pinned to one CPU", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="akener-cli-bench-") as tmp:
        workdir = Path(tmp)
        env = environment(workdir)
        subprocess.run([str(AKENER), "db", "upgrade"], env=env, cwd=workdir, check=True)
        for number in range(args.keys):
            subprocess.run(
                [str(AKENER), "keys", "create", "--name", f"bench {number}"],
                env=env,
                cwd=workdir,
                check=True,
                capture_output=True,
            )
        commands = {name: [*pin, str(AKENER), *argv] for name, argv in ARGS.items()}
        for command in commands.values():
            for _ in range(args.warmup):
                run_once(command, env, workdir)
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                wall, used = run_once(command, env, workdir)
                times[name].append(wall)
                cpu[name].append(used)

    print(f"{args.runs} runs each, pinned to CPU {args.cpu if pin else '-'}, {args.keys} keys")
    print(
        f"load average before the runs ended: {os.getloadavg()[0]:.2f} (busy machines run slower)"
    )
    print(
        f"{'command':20} {'median':>8} {'min':>8} {'max':>8} {'cpu':>8} {'target':>8} {'ratio':>6}"
    )
    failed = False
    for name, values in times.items():
        median = statistics.median(values)
        ratio = median / TARGETS[name]
        failed |= ratio > 1
        print(
            f"{name:20} {median:7.3f}s {min(values):7.3f}s {max(values):7.3f}s "
            f"{statistics.median(cpu[name]):7.3f}s {TARGETS[name]:7.1f}s {ratio:6.2f}"
        )
    print("wall times; cpu is the median user + system time, which other load does not inflate")
    print("every median meets its target" if not failed else "a median misses its target")


if __name__ == "__main__":
    main()
