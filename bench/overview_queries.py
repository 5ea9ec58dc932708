"""The overview page's queries before and after their rewrite, interleaved in one run (issue 12).

Seeds the data of bench/dashboard_pages.py (100,000 keys, usage on one in ten for 90 days) in
a database of its own, then, run after run, times the overview's figures as they were queried
before (four scans of the keys, the busiest keys joined to every key, generic plans) and as
akener queries them now, each in its own transaction, alternating so that both see the same
load. Prints the median and the ratio.

    taskset -c 1 .venv/bin/python bench/overview_queries.py --keys 100000 --runs 15
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from akener.accounts.permissions import CLI_PRINCIPAL
from akener.db.engine import make_engine, make_sessionmaker
from akener.db.migrate import upgrade
from akener.keys import overview
from akener.keys.models import ApiKey
from akener.keys.repository import KeyRepository
from akener.verify.models import KeyUsage

sys.path.insert(0, str(Path(__file__).parent))
from dashboard_pages import PG_URL, pg_database, seed

DATABASE = f"akener_bench_overview_{os.getpid()}"
WEEK = timedelta(days=7)


async def before(session: AsyncSession, now: datetime) -> Any:
    """The figures as the overview queried them before (git show 22ed277)."""
    today, cutoff = now.date(), now - timedelta(days=30)
    unused = and_(
        ApiKey.status == "ACTIVE",
        or_(
            ApiKey.last_used_at < cutoff,
            and_(ApiKey.last_used_at.is_(None), ApiKey.created_at < cutoff),
        ),
    )
    count = await session.scalar(select(func.count()).select_from(ApiKey).where(unused))
    order = (ApiKey.last_used_at.is_not(None), ApiKey.last_used_at, ApiKey.created_at)
    listed = (await session.scalars(select(ApiKey).where(unused).order_by(*order).limit(20))).all()
    days = (
        await session.execute(
            select(KeyUsage.day, func.sum(KeyUsage.count))
            .where(KeyUsage.day >= today - timedelta(days=89), KeyUsage.day <= today)
            .group_by(KeyUsage.day)
        )
    ).all()
    total = func.sum(KeyUsage.count).label("total")
    ranked = (
        select(KeyUsage.key_id, total)
        .where(KeyUsage.day >= today - timedelta(days=29), KeyUsage.day <= today)
        .group_by(KeyUsage.key_id)
        .subquery()
    )
    busiest = (
        await session.execute(
            select(ApiKey, ranked.c.total)
            .join(ranked, ranked.c.key_id == ApiKey.id)
            .order_by(ranked.c.total.desc(), ApiKey.name)
            .limit(10)
        )
    ).all()
    repo = KeyRepository(session)
    expiring = (
        await repo.list_expiring(now, now + WEEK, 20),
        await repo.count_expiring(now, now + WEEK),
    )
    return count, len(listed), sum(int(n) for _, n in days), len(busiest), expiring[1]


async def after(session: AsyncSession, now: datetime) -> Any:
    """The figures as akener queries them now (akener.keys.overview)."""
    care = await overview.upkeep(
        session, CLI_PRINCIPAL, unused_days=30, expiring_within=WEEK, now=now, limit=20
    )
    days = await overview.traffic_by_day(session, CLI_PRINCIPAL, days=90, today=now.date())
    busiest = await overview.busiest_keys(session, CLI_PRINCIPAL, days=30, today=now.date())
    return (
        care.unused_count,
        len(care.unused),
        sum(n for _, n in days),
        len(busiest),
        care.expiring_count,
    )


async def run(keys: int, runs: int, pg_url: str) -> None:
    """Seed, then alternate before and after; print medians."""
    url = await pg_database(pg_url, DATABASE)
    engine = make_engine(url)
    try:
        await upgrade(engine)
        await seed(url, keys)
        sessions = make_sessionmaker(engine)
        now = datetime.now(UTC)
        timings: dict[str, list[float]] = {"before": [], "after": []}
        shapes: dict[str, Any] = {}
        work: dict[str, Callable[[AsyncSession, datetime], Awaitable[Any]]] = {
            "before": before,
            "after": after,
        }
        for n in range(runs + 1):
            for name in ("before", "after") if n % 2 else ("after", "before"):
                async with sessions() as session:
                    started = time.perf_counter()
                    shapes[name] = await work[name](session, now)
                    elapsed = (time.perf_counter() - started) * 1000
                if n:  # the first round warms caches
                    timings[name].append(elapsed)
        assert shapes["before"] == shapes["after"], shapes
        old, new = (statistics.median(timings[k]) for k in ("before", "after"))
        print(f"postgresql, {keys:,} keys, {runs} runs each, alternating")
        print(f"  overview queries before  {old:8.1f} ms median")
        print(f"  overview queries after   {new:8.1f} ms median   ({old / new:.2f}x faster)")
    finally:
        await engine.dispose()
        await pg_database(pg_url, DATABASE, drop_only=True)


def main() -> None:
    """Parse the flags and run."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args()
    asyncio.run(run(args.keys, args.runs, args.pg_url))


if __name__ == "__main__":
    main()
