"""Memory of one process's verifier state with 1M keys, 100k of them limited and active.

Measured, not estimated: a SQLite database holds ``--keys`` keys (default 1,000,000), of which
``--limited`` (default 100,000) carry a rate-limit window and an allowlist and belong to one of
1,000 owners with a shared window. One real Runtime (default settings: key cache bound 100,000,
unknown-key cache 65,536, window counters 200,000) then

1. sees every key once: the rows are read in chunks and put in the key cache by the verifier's
   own ``entry_from_row`` (what a cache miss does), with the forward-auth headers memoised as
   ``/authz`` does; the bound keeps the last 100,000;
2. sees every limited key (the last rows: the ones the cache kept) through ``/authz``'s hot
   path: ``Verifier.cached`` (a cache hit), ``Verifier.admit`` (the allowlist and both windows)
   and ``usage.record``, and one refused request per key counted by reason (``usage.refuse``),
   all before any flush;
3. sees 100,000 unknown keys (the negative cache, filled as a miss that finds no row does).

After each step it prints the Python heap traced by ``tracemalloc`` (after ``gc.collect()``),
the process's resident size (VmRSS) and the sizes of the structures. ``--no-trace`` leaves
tracemalloc off (its own bookkeeping inflates the resident size): run it for the RSS figure.
``--cache-max-keys`` measures another bound (1,000,000 holds every key).

    .venv/bin/python bench/limits_memory.py
    .venv/bin/python bench/limits_memory.py --keys 200000 --limited 20000   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

SECRET = "bench-secret-" + "m" * 40
OWNERS = 1000
WINDOW = json.dumps([{"name": "requests", "limit": 100, "period_seconds": 60}])
OWNER_WINDOW = json.dumps([{"name": "shared", "limit": 10_000, "period_seconds": 3600}])
ALLOWED = json.dumps(["10.0.0.0/8", "2001:db8::/32"])
CLIENT = "10.1.2.3"


def rss_mb() -> float:
    """The process's resident set size in MB (from /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def traced_mb() -> float:
    """The Python heap traced now, in MB, after a full collection (nan when not tracing)."""
    gc.collect()
    if not tracemalloc.is_tracing():
        return float("nan")
    return tracemalloc.get_traced_memory()[0] / 1e6


def seed(path: Path, keys: int, limited: int, digest: object) -> list[str]:
    """``keys`` rows in one transaction; returns the plaintexts of the ``limited`` limited ones
    (every other key gets a random digest: nobody holds it)."""
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    masked = "akener_" + "*" * 60 + "0000"
    plaintexts: list[str] = []
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")  # a throwaway database: speed over durability
    insert = (
        "INSERT INTO api_keys (id, name, digest, pepper_version, masked_key, status, scopes,"
        " created_at, created_by, request_count, owner_id, rate_limits, allowed_ips)"
        " VALUES (?, ?, ?, 1, ?, 'ACTIVE', ?, ?, 'cli', 0, ?, ?, ?)"
    )
    try:
        with conn:
            conn.executemany(
                "INSERT INTO owners (owner_id, rate_limits, created_at, updated_at)"
                " VALUES (?, ?, ?, ?)",
                [(f"customer_{n}", OWNER_WINDOW, now, now) for n in range(OWNERS)],
            )
            for start in range(0, keys, 50_000):
                rows = []
                for i in range(start, min(keys, start + 50_000)):
                    if i >= keys - limited:  # last: the ones the cache keeps
                        plaintext = "akener_" + secrets.token_hex(32)
                        plaintexts.append(plaintext)
                        key_digest = digest(plaintext)  # type: ignore[operator]
                        owner, windows, allowed = f"customer_{i % OWNERS}", WINDOW, ALLOWED
                    else:
                        key_digest, owner, windows, allowed = (
                            secrets.token_hex(32),
                            None,
                            "[]",
                            "[]",
                        )
                    scopes = '["orders.read", "orders.write"]'
                    rows.append(
                        (uuid.uuid4().hex, f"bench key {i}", key_digest, masked, scopes, now,
                         owner, windows, allowed)
                    )  # fmt: skip
                conn.executemany(insert, rows)
    finally:
        conn.close()
    return plaintexts


def report(label: str, base_traced: float, base_rss: float, **sizes: int) -> None:
    """One line: heap and RSS above the start, and the structures' sizes."""
    traced, rss = traced_mb(), rss_mb()
    shown = ", ".join(f"{k} {v:,}" for k, v in sizes.items())
    print(
        f"{label:<44} heap +{traced - base_traced:7.1f} MB   RSS +{rss - base_rss:7.1f} MB"
        f"   ({shown})",
        flush=True,
    )


async def measure(args: argparse.Namespace) -> None:
    """Seed, start a runtime, fill its state step by step and print what it costs."""
    from sqlalchemy import literal_column, select

    from akener.authz.handler import _allow_headers
    from akener.db.engine import make_engine
    from akener.db.migrate import upgrade
    from akener.keys import tokens
    from akener.keys.models import ApiKey, Owner
    from akener.runtime import Runtime
    from akener.settings import Settings
    from akener.verify.cache import CachedKey
    from akener.verify.service import entry_from_row

    # Kept between runs (seeding a million rows takes minutes): the database and the limited
    # keys' plaintexts, under the same fixed secret.
    workdir = Path(tempfile.gettempdir()) / f"akener-memory-{args.keys}-{args.limited}"
    saved = workdir / "limited-keys.txt"
    url = f"sqlite+aiosqlite:///{workdir / 'memory.db'}"
    if not saved.exists():
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()
    settings = Settings(  # type: ignore[call-arg]
        database_url=url,
        secret_key=SECRET,
        _env_file=None,
        cache_max_keys=args.cache_max_keys,
        usage_flush_seconds=3600,  # nothing flushed while measuring: the worst case
        prune_interval=None,
    )
    runtime = await Runtime.start(settings)
    digest = tokens.digester(runtime.peppers.by_version[runtime.peppers.current])
    await runtime.close()
    started = time.monotonic()
    if saved.exists():
        plaintexts = saved.read_text().split()
        print(f"reusing {workdir}", flush=True)
    else:
        plaintexts = seed(workdir / "memory.db", args.keys, args.limited, digest)
        saved.write_text("\n".join(plaintexts))
    runtime = await Runtime.start(settings)  # after the seeding: its cache starts trusted
    verifier = runtime.verifier
    verifier.cached("akener_" + "0" * 64)  # the first request: the cache becomes trusted
    print(
        f"seeded {args.keys:,} keys ({args.limited:,} limited, {OWNERS:,} owners) in "
        f"{time.monotonic() - started:.0f} s; cache bound {settings.cache_max_keys:,}",
        flush=True,
    )
    if args.trace:
        tracemalloc.start()
    base_traced, base_rss = traced_mb(), rss_mb()
    try:
        # 1. Every key once, as cache misses fill the cache.
        async with runtime.sessionmaker() as session:
            owners = {o.owner_id: o for o in (await session.execute(select(Owner))).scalars()}
        seen, after = 0, 0
        rowid = literal_column("api_keys.rowid")
        while True:  # in rowid order, a page per session: the limited keys come last
            async with runtime.sessionmaker() as session:
                page = select(ApiKey, rowid).where(rowid > after).order_by(rowid).limit(20_000)
                rows = (await session.execute(page)).all()
            if not rows:
                break
            after = rows[-1][1]
            for row, _ in rows:
                entry = entry_from_row(row, [row.digest], owners.get(row.owner_id or ""))
                entry.edge = _allow_headers(entry)
                verifier.cache.put(row.digest, entry, verifier.cache.generation)
                seen += 1
            del rows
        del owners
        report(f"1. {seen:,} keys seen once", base_traced, base_rss, cache=len(verifier.cache))
        # 2. The limited keys through the hot path: lookup, admit, usage; one refusal each.
        started = time.monotonic()
        admitted = 0
        for plaintext in plaintexts:
            entry = verifier.cached(plaintext)  # /authz's path: a hit for an active key
            assert isinstance(entry, CachedKey), entry
            assert entry.limits is not None, (entry.id, entry.name)
            if entry.edge is None:
                entry.edge = _allow_headers(entry)
            admission = await verifier.admit(entry, CLIENT)
            if admission is not None and admission.code is None:
                admitted += 1
                verifier.usage.record(entry.id)
            verifier.usage.refuse(entry.id, "RATE_LIMITED")
        took = time.monotonic() - started
        report(
            f"2. + {len(plaintexts):,} limited keys active",
            base_traced,
            base_rss,
            cache=len(verifier.cache),
            counters=len(verifier.counters),
            admitted=admitted,
            usage_pending=verifier.usage.pending,
        )
        print(f"   (hot path for the limited keys: {took:.0f} s)", flush=True)
        # 3. Unknown keys: the negative cache's bound.
        for _ in range(100_000):  # what a miss that finds no row stores
            unknown = digest("akener_" + secrets.token_hex(32))
            verifier.cache.put(unknown, None, verifier.cache.generation)
        report(
            "3. + 100,000 unknown keys",
            base_traced,
            base_rss,
            unknown=verifier.cache.unknown_count,
        )
        top = tracemalloc.take_snapshot().statistics("filename")[:6] if args.trace else []
        for stat in top:
            name = str(stat.traceback[0].filename).replace(str(ROOT) + "/", "")
            print(f"   largest holder: {name}: {stat.size / 1e6:.1f} MB", flush=True)
    finally:
        tracemalloc.stop()
        verifier.usage._counts.clear()  # not written: the database is thrown away
        verifier.usage._current.clear()
        verifier.usage._refused.clear()
        verifier.usage._refused_current.clear()
        verifier.usage._seen_at.clear()
        await runtime.close()


def main() -> None:
    """Parse the flags and run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--limited", type=int, default=100_000)
    parser.add_argument("--cache-max-keys", type=int, default=100_000)
    parser.add_argument("--no-trace", dest="trace", action="store_false")
    args = parser.parse_args()
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
