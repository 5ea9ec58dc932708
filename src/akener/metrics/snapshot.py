"""Each process's numbers, written to a per-server directory and added up when read.

Every server process (each granian or uvicorn worker) copies its counters and gauges into a
small JSON file, ``process-<pid>-<random>.json``, once a second and when it stops, replacing the
file atomically. The process that answers ``/metrics`` takes its own numbers fresh and reads
the others' files:

* counters and latency histograms are summed over every file, those of processes that have
  ended included, so a worker restarted by the server never makes a counter go backwards;
* gauges (cache size, pool in use, listener state, pending usage) come from live processes only.

So the other workers' numbers are at most ``PUBLISH_SECONDS`` old. ``akener serve`` makes a
fresh directory per server and removes it at the end (``AKENER_METRICS_DIR``, docs/metrics.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from akener.metrics.recorder import ENDPOINTS, ROW_LENGTH, ProcessRecorders
from akener.verify.cache import KeyCache
from akener.verify.listener import PgChangeListener
from akener.verify.usage import UsageRecorder

log = logging.getLogger("akener.metrics")

PUBLISH_SECONDS = 1.0
FILE_PREFIX = "process-"

Snapshot = dict[str, Any]


def pool_state(engine: AsyncEngine) -> tuple[int, int]:
    """Connections of the engine's pool in use and its configured size (0, 0 without a pool
    that counts, such as SQLite's in-memory one)."""
    pool = engine.pool
    checkedout = getattr(pool, "checkedout", None)
    size = getattr(pool, "size", None)
    in_use = checkedout() if callable(checkedout) else 0
    return int(in_use), int(size()) if callable(size) else 0


@dataclass
class ProcessSources:
    """Where one process's numbers come from."""

    recorders: ProcessRecorders
    cache: KeyCache
    usage: UsageRecorder
    engine: AsyncEngine
    listener: PgChangeListener | None = None

    def snapshot(self) -> Snapshot:
        """This process's numbers now."""
        now = time.time()
        in_use, size = pool_state(self.engine)
        gauges: dict[str, float] = {
            "cache_entries_known": len(self.cache) - self.cache.unknown_count,
            "cache_entries_unknown": self.cache.unknown_count,
            "usage_pending_requests": self.usage.pending,
            "usage_flush_lag_seconds": max(0.0, now - self.usage.flushed_at),
            "db_pool_in_use": in_use,
            "db_pool_size": size,
        }
        counters: dict[str, float] = {
            "cache_hits": self.cache.hits,
            "cache_misses": self.cache.misses,
            "usage_flush_failures": self.usage.failures,
            "usage_lost_requests": self.usage.lost,
        }
        if self.listener is not None:
            gauges["listener_up"] = 1 if self.listener.connected else 0
            counters["listener_connects"] = self.listener.connects
        return {
            "pid": os.getpid(),
            "written_at": now,
            "checks": self.recorders.export(),
            "verdicts": dict(self.recorders.verdicts),
            "counters": counters,
            "gauges": gauges,
        }


class SnapshotFile:
    """This process's file in the server's metrics directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / f"{FILE_PREFIX}{os.getpid()}-{secrets.token_hex(4)}.json"

    def write(self, snapshot: Snapshot) -> None:
        """Replace the file atomically (readers see the old or the new one, never half)."""
        temporary = self.path.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(snapshot, separators=(",", ":")))
            os.replace(temporary, self.path)
        except OSError as exc:  # a full or vanished directory must not stop the server
            log.warning("cannot write this process's metrics to %s: %s", self.directory, exc)

    def others(self) -> Iterator[Snapshot]:
        """Every other process's last snapshot (unreadable files are skipped)."""
        try:
            paths = sorted(self.directory.glob(f"{FILE_PREFIX}*.json"))
        except OSError:
            return
        for path in paths:
            if path == self.path:
                continue
            try:
                found = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # removed meanwhile, or from something that is not akener
            if isinstance(found, dict):
                yield found


def alive(pid: Any) -> bool:
    """True when a process with this id runs on this host."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


@dataclass
class Totals:
    """The server's numbers: every process's added up."""

    checks: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: {name: {} for name in ENDPOINTS}
    )
    counters: dict[str, float] = field(default_factory=dict)
    verdicts: dict[str, float] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)  # gauges added over live processes
    lowest: dict[str, float] = field(default_factory=dict)
    highest: dict[str, float] = field(default_factory=dict)
    live: int = 0
    ended: int = 0

    def add(self, snapshot: Snapshot, *, live: bool) -> None:
        """Count one process's snapshot in."""
        for endpoint, rows in snapshot.get("checks", {}).items():
            into = self.checks.setdefault(endpoint, {})
            for status, row in rows.items():
                if len(row) != ROW_LENGTH:
                    continue  # not a row this version writes
                have = into.get(status)
                into[status] = (
                    list(row) if have is None else [a + b for a, b in zip(have, row, strict=True)]
                )
        for name, value in snapshot.get("counters", {}).items():
            self.counters[name] = self.counters.get(name, 0) + value
        for code, value in snapshot.get("verdicts", {}).items():
            self.verdicts[code] = self.verdicts.get(code, 0) + value
        if not live:
            self.ended += 1
            return
        self.live += 1
        for name, value in snapshot.get("gauges", {}).items():
            self.sums[name] = self.sums.get(name, 0) + value
            self.lowest[name] = min(self.lowest.get(name, value), value)
            self.highest[name] = max(self.highest.get(name, value), value)


def gather(sources: ProcessSources, file: SnapshotFile | None) -> Totals:
    """This process's numbers now plus every other process's last ones."""
    totals = Totals()
    totals.add(sources.snapshot(), live=True)
    if file is not None:
        for other in file.others():
            totals.add(other, live=alive(other.get("pid")))
    return totals


def prepare_directory(directory: Path) -> None:
    """Create the directory (owner only) and remove snapshots a previous server left."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in directory.glob(f"{FILE_PREFIX}*"):
        with contextlib.suppress(OSError):
            stale.unlink()
