"""Many akener processes on one database: who holds which connection, and a mixed load.

Shared by tests/integration/test_fleet.py (the connection budget, the 24-process fleet) and
tests/integration/test_pgbouncer.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from tests.factories import bearer
from tests.servers import free_port, process_tree

SAMPLER_NAME = "akener-test-sampler"
# uvicorn closes a connection idle for 5 s; a client that reuses it at that moment gets "server
# disconnected", a race of the test's client, not of akener. Idle connections go sooner here.
CLIENT_LIMITS = httpx.Limits(max_keepalive_connections=64, keepalive_expiry=1.0)


def owner_pid(application_name: str) -> int | None:
    """The process id in ``akener:<pid>`` or ``akener-listener:<pid>``; None for other names."""
    kind, _, pid = application_name.rpartition(":")
    if kind in ("akener", "akener-listener") and pid.isdigit():
        return int(pid)
    return None


@dataclass
class ConnectionPeaks:
    """The most connections each application name held at once, and the most in total."""

    by_name: dict[str, int] = field(default_factory=dict)
    total: int = 0
    samples: int = 0

    def pooled(self, pid: int) -> int:
        """Peak pooled connections of one process."""
        return self.by_name.get(f"akener:{pid}", 0)

    def listening(self, pid: int) -> int:
        """Peak listener connections of one process."""
        return self.by_name.get(f"akener-listener:{pid}", 0)


async def _sample(
    dsn: str, database: str, stop: threading.Event, ready: threading.Event, every: float
) -> ConnectionPeaks:
    peaks = ConnectionPeaks()
    conn = await asyncpg.connect(dsn, server_settings={"application_name": SAMPLER_NAME})
    try:
        while not stop.is_set() or not peaks.samples:
            rows = await conn.fetch(
                "SELECT coalesce(application_name, ''), count(*) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend' GROUP BY 1",
                database,
            )
            for name, count in rows:
                peaks.by_name[name] = max(peaks.by_name.get(name, 0), count)
            peaks.total = max(peaks.total, sum(count for _, count in rows))
            peaks.samples += 1
            ready.set()
            await asyncio.sleep(every)
    finally:
        await conn.close()
    return peaks


class ConnectionSampler:
    """Polls ``pg_stat_activity`` for one database in a thread of its own (so a busy test
    event loop cannot slow it down) until stopped; the sampler's own connection is not
    counted."""

    def __init__(self, dsn: str, database: str, every: float = 0.05) -> None:
        self._stop, self._ready = threading.Event(), threading.Event()
        self._result: list[ConnectionPeaks] = []
        self._errors: list[BaseException] = []

        def run() -> None:
            try:
                self._result.append(
                    asyncio.run(_sample(dsn, database, self._stop, self._ready, every))
                )
            except BaseException as exc:  # reported by stop()
                self._errors.append(exc)
                self._ready.set()

        self._thread = threading.Thread(target=run, name="connection-sampler", daemon=True)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the connection sampler did not start")
        return self

    def stop(self) -> ConnectionPeaks:
        """Stop sampling; the peaks seen."""
        self._stop.set()
        self._thread.join(30)
        if self._errors:
            raise self._errors[0]
        return self._result[0]

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


@dataclass
class LoadReport:
    """What a mixed load saw: answers by kind and status, and anything unexpected."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    slowest: dict[str, float] = field(default_factory=dict)

    def note(self, kind: str, answer: httpx.Response, expected: int) -> None:
        """Count one answer; a status other than ``expected`` is a problem."""
        self.statuses[(kind, answer.status_code)] += 1
        took = answer.elapsed.total_seconds()
        self.slowest[kind] = max(self.slowest.get(kind, 0.0), took)
        if answer.status_code != expected:
            self.problems.append(f"{kind}: {answer.status_code} {answer.text[:200]}")

    @property
    def requests(self) -> int:
        """Every answer counted."""
        return sum(self.statuses.values())


async def _verifier(
    urls: list[str], keys: list[str], stop: asyncio.Event, report: LoadReport
) -> None:
    async with httpx.AsyncClient(timeout=30, limits=CLIENT_LIMITS) as client:
        while not stop.is_set():
            url = random.choice(urls)
            try:
                answer = await client.get(url + "/authz", headers=bearer(random.choice(keys)))
            except httpx.TransportError as exc:
                report.problems.append(f"verify {url}: {exc!r}")
                continue
            report.note("verify", answer, 200)


async def _writer(urls: list[str], admin: str, stop: asyncio.Event, report: LoadReport) -> None:
    """Create a key on one process, use it on another, rename it, list, switch it off."""
    auth = bearer(admin)
    async with httpx.AsyncClient(timeout=30, limits=CLIENT_LIMITS) as client:
        while not stop.is_set():
            a, b = random.sample(urls, 2) if len(urls) > 1 else (urls[0], urls[0])
            try:
                made = await client.post(
                    a + "/api/v1/keys", headers=auth, json={"name": f"load-{uuid.uuid4().hex}"}
                )
                report.note("create", made, 201)
                if made.status_code != 201:
                    continue
                key_id, key = made.json()["id"], made.json()["key"]
                report.note("verify-new", await client.get(b + "/authz", headers=bearer(key)), 200)
                renamed = await client.patch(
                    f"{b}/api/v1/keys/{key_id}", headers=auth, json={"name": f"r-{key_id}"}
                )
                report.note("rename", renamed, 200)
                listed = await client.get(a + "/api/v1/keys?limit=5", headers=auth)
                report.note("list", listed, 200)
                off = await client.patch(
                    f"{a}/api/v1/keys/{key_id}", headers=auth, json={"status": "INACTIVE"}
                )
                report.note("deactivate", off, 200)
                # The process that made the change refuses at once.
                report.note("refused", await client.get(a + "/authz", headers=bearer(key)), 401)
            except httpx.TransportError as exc:
                report.problems.append(f"write {a}/{b}: {exc!r}")


async def mixed_load(
    urls: list[str],
    admin: str,
    keys: list[str],
    stop: asyncio.Event,
    *,
    verifiers: int,
    writers: int,
) -> LoadReport:
    """Verifications of ``keys`` and management writes spread over ``urls`` until ``stop``."""
    report = LoadReport()
    tasks = [_verifier(urls, keys, stop, report) for _ in range(verifiers)]
    tasks += [_writer(urls, admin, stop, report) for _ in range(writers)]
    await asyncio.gather(*tasks)
    return report


@dataclass
class Refusal:
    """When each process refused a switched-off key, relative to the change's answer."""

    late: dict[str, float] = field(default_factory=dict)  # url -> last accepted send offset
    first_refusal: dict[str, float] = field(default_factory=dict)  # url -> first 401 send offset
    problems: list[str] = field(default_factory=list)
    # Probe requests that failed in transport and were sent again (the server logged nothing
    # and kept running; seen only when one client process drives 24 servers on two cores).
    retried: list[str] = field(default_factory=list)

    @property
    def bound(self) -> float:
        """The longest any process went on accepting after the answer (0: none did)."""
        return max(self.late.values(), default=0.0)


async def _probe(
    url: str,
    key: str,
    answered: list[float],
    out: list[tuple[float, int]],
    errors: list[str],
) -> None:
    """Probe until a request sent after the change's answer (``answered``, once set) is
    refused; slowly before the change, as fast as it can after. One connection per probe."""
    async with httpx.AsyncClient(timeout=30, limits=CLIENT_LIMITS) as client:
        while True:
            sent = time.perf_counter()
            try:
                status = (await client.get(url + "/authz", headers=bearer(key))).status_code
            except httpx.TransportError as exc:
                errors.append(f"{url}: {exc!r} after {time.perf_counter() - sent:.1f} s")
                await asyncio.sleep(0.01)
                continue
            out.append((sent, status))
            if answered and status == 401 and sent > answered[0]:
                return
            await asyncio.sleep(0.002 if answered else 0.1)


async def revoke_across(
    change_url: str, admin: str, urls: list[str], key_id: str, key: str, *, wait: float = 15
) -> Refusal:
    """Switch ``key`` off through ``change_url`` while one connection per process probes it;
    each probe stops after its first refusal following the change (at most ``wait`` seconds:
    on a crowded machine a probe's next request may leave long after the change)."""
    result = Refusal()
    seen: dict[str, list[tuple[float, int]]] = {url: [] for url in urls}
    answered_at: list[float] = []
    async with httpx.AsyncClient(timeout=30, limits=CLIENT_LIMITS) as client:
        tasks = [
            asyncio.create_task(_probe(u, key, answered_at, seen[u], result.retried)) for u in urls
        ]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # every process has accepted (and cached) the key
            warm = [u for u in urls if not any(s == 200 for _, s in seen[u])]
            if not warm:
                break
            await asyncio.sleep(0.05)
        off = await client.patch(
            f"{change_url}/api/v1/keys/{key_id}", headers=bearer(admin), json={"status": "INACTIVE"}
        )
        answered = time.perf_counter()
        answered_at.append(answered)
        if off.status_code != 200:
            result.problems.append(f"deactivation: {off.status_code} {off.text[:200]}")
        _done, pending = await asyncio.wait(tasks, timeout=wait)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    result.problems += [f"{u}: never accepted the key before the change" for u in warm]
    for url, probes in seen.items():
        after = [(t - answered, s) for t, s in probes if t > answered]
        accepted = [t for t, s in after if s == 200]
        refused = [t for t, s in after if s == 401]
        result.late[url] = max(accepted, default=0.0)
        if not refused:
            pending_for = time.perf_counter() - max((t for t, _ in probes), default=answered)
            result.problems.append(
                f"{url}: no refusal within {wait} s ({len(after)} answers after the change,"
                f" the last request in flight for {pending_for:.1f} s)"
            )
        else:
            result.first_refusal[url] = refused[0]
        if any(s not in (200, 401) for _, s in probes):
            result.problems.append(f"{url}: unexpected answers {sorted({s for _, s in probes})}")
    return result


FORKSERVE = Path(__file__).with_name("forkserve.py")


class ForkedFleet:
    """``count`` akener processes forked from one parent (tests/forkserve.py), each on its own
    port and with its own change counter directory, as if each ran on a host of its own."""

    def __init__(self, env: dict[str, str], workdir: Path, count: int) -> None:
        self.env = env
        self.workdir = workdir
        self.ports = [free_port() for _ in range(count)]
        self.urls = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ForkedFleet:
        self.workdir.mkdir(parents=True, exist_ok=True)
        specs = [f"{port}:{self.workdir / f'counter-{port}'}" for port in self.ports]
        with (self.workdir / "parent.log").open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(FORKSERVE), str(self.workdir), *specs],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def pids(self) -> set[int]:
        """The process id of every server."""
        return {int((self.workdir / f"{port}.pid").read_text()) for port in self.ports}

    def all_alive(self) -> bool:
        """True while every server process runs."""
        return all(Path(f"/proc/{pid}").exists() for pid in self.pids())

    def log_text(self) -> str:
        """Everything every server wrote."""
        paths = [self.workdir / "parent.log", *(self.workdir / f"{p}.log" for p in self.ports)]
        return "".join(p.read_text(errors="replace") for p in paths if p.exists())

    async def wait_ready(self, within: float) -> None:
        """Return once every server answers; fail with the logs past ``within``."""
        deadline = time.monotonic() + within
        waiting = list(self.urls)
        async with httpx.AsyncClient(timeout=5) as client:
            while waiting:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"the fleet's parent exited:\n{self.log_text()[-3000:]}")
                for url in list(waiting):
                    try:
                        if (await client.get(url + "/authz")).status_code == 401:
                            waiting.remove(url)
                    except httpx.TransportError:
                        pass
                if waiting and time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{len(waiting)} servers not ready:\n{self.log_text()[-3000:]}"
                    )
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM to every server (a clean shutdown each), then wait for them."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            for pid in process_tree(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()
