"""The embedded verifier (clients/python): microseconds per cached check, and a FastAPI app
with the akener_client dependency against the same app without it, side by side.

    .venv/bin/python bench/verifier.py            # about two minutes
    .venv/bin/python bench/verifier.py --rounds 5 --duration 5

Starts a real ``akener serve`` (SQLite, in a temporary directory), makes a key, and then:

* in process, pinned to CPU 0: ``Verifier.verify`` on a key already checked once (memory),
  with and without a scope, beside the floor of what memory needs (a BLAKE2b digest and a dict
  lookup) and beside one verify API call over HTTP;
* two uvicorn servers pinned to CPU 0, one serving the FastAPI route alone and one serving it
  behind ``require_key`` (bench/verifier_apps.py), loaded in turns by ``wrk`` pinned to CPU 1
  with the same valid key; the ratio of their medians over the rounds is the result.

Needs two CPUs, wrk and taskset (see bench/README.md).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "clients" / "python" / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from akener_client import Verifier  # noqa: E402
from run import free_port, start, wrk  # noqa: E402

VENV_BIN = Path(sys.executable).parent


def akener_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKENER_")}
    env.update(
        AKENER_DATABASE_URL=f"sqlite:///{workdir / 'akener.db'}",
        AKENER_SECRET_KEY=secrets.token_hex(32),
        AKENER_LOG_LEVEL="warning",
        AKENER_GITHUB_SCANNING_KEYS_URL="http://127.0.0.1:9/nothing-listens-here",
    )
    return env


def cli(env: dict[str, str], workdir: Path, *args: str) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "akener"), *args], env=env, cwd=workdir, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(done.stderr)
    return done.stdout.strip()


def per_call_us(call: object, number: int) -> float:
    """Best of five timeit runs, in microseconds per call."""
    assert callable(call)
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def in_process(url: str, verify_key: str, key: str) -> None:
    os.sched_setaffinity(0, {0})
    verifier = Verifier(url, verify_key)
    try:
        if not verifier.wait_ready(15):
            raise RuntimeError("the change stream never became ready")
        first = verifier.verify(key, ["reports.read"])
        deadline = time.monotonic() + 10
        while not verifier.verify(key, ["reports.read"]).cached:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "memory never answered: does this akener's verify API say 'limited'?"
                )
            time.sleep(0.01)
        assert first.valid
        salt = secrets.token_bytes(32)
        table = {hashlib.blake2b(key.encode(), key=salt, digest_size=16).digest(): first}

        def floor() -> object:
            return table.get(hashlib.blake2b(key.encode(), key=salt, digest_size=16).digest())

        scopes = ("reports.read",)
        rows = [
            ("floor: BLAKE2b digest + dict lookup", per_call_us(floor, 200_000)),
            (
                "Verifier.verify(key), from memory",
                per_call_us(lambda: verifier.verify(key), 200_000),
            ),
            (
                "Verifier.verify(key, ['reports.read']), from memory",
                per_call_us(lambda: verifier.verify(key, scopes), 200_000),
            ),
        ]
        with httpx.Client(base_url=url) as client:
            body = {"key": key, "scopes": ["reports.read"]}
            headers = {"Authorization": f"Bearer {verify_key}"}
            rows.append(
                (
                    "POST /api/v1/keys/verify over HTTP (for contrast)",
                    per_call_us(
                        lambda: client.post("/api/v1/keys/verify", json=body, headers=headers),
                        200,
                    ),
                )
            )
    finally:
        verifier.close()
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    print("In process, pinned to CPU 0 (best of 5 timeit runs):\n")
    print(f"| {'check':<55} | µs per call |")
    print(f"|{'-' * 57}|-------------|")
    for name, us in rows:
        print(f"| {name:<55} | {us:11.2f} |")
    print()


def revocation(url: str, verify_key: str, admin_key: str, trials: int) -> None:
    """How long after the API's answer a switched-off key is still accepted from memory."""
    verifier = Verifier(url, verify_key)
    seen: list[float] = []
    try:
        if not verifier.wait_ready(15):
            raise RuntimeError("the change stream never became ready")
        headers = {"Authorization": f"Bearer {admin_key}"}
        with httpx.Client(base_url=url, headers=headers) as admin:
            for i in range(trials):
                made = admin.post("/api/v1/keys", json={"name": f"revoked {i} {time.time_ns()}"})
                made.raise_for_status()
                key, key_id = made.json()["key"], made.json()["id"]
                deadline = time.monotonic() + 10
                while not verifier.verify(key).cached:
                    if time.monotonic() > deadline:
                        raise RuntimeError("memory never answered")
                    time.sleep(0.005)
                admin.patch(
                    f"/api/v1/keys/{key_id}", json={"status": "INACTIVE"}
                ).raise_for_status()
                answered = time.perf_counter()
                while verifier.verify(key).valid:
                    if time.perf_counter() - answered > 10:
                        raise RuntimeError("still accepted after 10 s")
                seen.append((time.perf_counter() - answered) * 1000)
    finally:
        verifier.close()
    seen.sort()
    p95 = seen[min(len(seen) - 1, round(0.95 * (len(seen) - 1)))]
    print(
        f"Revocation through the change stream ({trials} trials, SQLite, one akener process):"
        " after PATCH status=INACTIVE answered, the verifier still accepted the key for"
        f" median {statistics.median(seen):.1f} ms, p95 {p95:.1f} ms, max {seen[-1]:.1f} ms.\n"
    )


def side_by_side(url: str, verify_key: str, key: str, rounds: int, duration: float) -> None:
    env = {**os.environ, "AKENER_URL": url, "AKENER_BENCH_KEY": verify_key}
    ports = {"without": free_port(), "with": free_port()}
    targets = {"without": "verifier_apps:plain", "with": "verifier_apps:guarded"}
    processes = []
    try:
        for name, port in ports.items():
            command = [str(VENV_BIN / "uvicorn"), targets[name], "--port", str(port)]
            command += ["--log-level", "warning", "--no-access-log", "--no-server-header"]
            command += ["--app-dir", str(ROOT / "bench")]
            processes.append(start(command, env, f"http://127.0.0.1:{port}/report"))
        header = f"Authorization: Bearer {key}"
        for name, port in ports.items():  # warm-up: memory filled, connections open
            answer = httpx.get(
                f"http://127.0.0.1:{port}/report", headers={"Authorization": f"Bearer {key}"}
            )
            assert answer.status_code == 200, (name, answer.text)
            wrk(f"http://127.0.0.1:{port}/report", header, 1, 32)
        rps: dict[str, list[float]] = {name: [] for name in ports}
        for _ in range(rounds):
            for name, port in ports.items():
                rps[name].append(wrk(f"http://127.0.0.1:{port}/report", header, duration, 32)[0])
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
    without, with_ = statistics.median(rps["without"]), statistics.median(rps["with"])
    print(
        f"FastAPI under uvicorn (CPU 0), wrk -t1 -c32 -d{duration:g}s (CPU 1), {rounds} rounds"
        " in turns, medians:\n"
    )
    print("| app | requests/s | every round | x without |")
    print("|---|---|---|---|")
    for name, value in (("without the dependency", without), ("with require_key", with_)):
        rounds_text = ", ".join(
            f"{r:,.0f}" for r in rps["without" if "without" in name else "with"]
        )
        print(f"| {name} | {value:,.0f} | {rounds_text} | {value / without:.2f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3)
    parser.add_argument("--trials", type=int, default=30, help="revocation trials")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two CPUs: the server and wrk are pinned to different ones")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = akener_env(workdir)
        cli(env, workdir, "db", "upgrade")
        verify_key = cli(
            env, workdir, "keys", "create", "--name", "bench verifier", "--scope", "api_keys.verify"
        )
        key = cli(
            env, workdir, "keys", "create", "--name", "bench caller", "--scope", "reports.read"
        )
        admin_key = cli(
            env,
            workdir,
            "keys",
            "create",
            "--name",
            "bench admin",
            "--scope",
            "api_keys.write",
            "--scope",
            "api_keys.read",
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [str(VENV_BIN / "akener"), "serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(url + "/authz", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("akener serve did not start") from None
                    time.sleep(0.1)
            load = os.getloadavg()
            print(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
            in_process(url, verify_key, key)
            revocation(url, verify_key, admin_key, args.trials)
            side_by_side(url, verify_key, key, args.rounds, args.duration)
        finally:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    main()
