"""Server time to render the dashboard's pages with many keys (issue 12: under 300 ms at 10k).

The app runs in this process behind httpx's ASGI transport, so each timing is the server's own
work for one page (routing, session, queries, template), with no network and no browser. Keys
are bulk-inserted (no real secrets: only the list is measured), with usage for 90 days on one
key in ten, expiries, inactive keys and scopes spread through them.

    .venv/bin/python bench/dashboard_pages.py        # SQLite and PostgreSQL, 10k and 100k keys
    .venv/bin/python bench/dashboard_pages.py --keys 10000 --databases sqlite --runs 5
    .venv/bin/python bench/dashboard_pages.py --keys 100000 --databases postgresql --only overview
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from akener.accounts import passwords
from akener.accounts.models import User
from akener.accounts.repository import RoleRepository
from akener.app import AkenerApp
from akener.db.engine import make_engine
from akener.keys.models import ApiKey
from akener.keys.tokens import generate_key, mask
from akener.settings import Settings
from akener.verify.models import KeyUsage

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET = "bench-dashboard-" + "d" * 40
PASSWORD = "bench password 123"  # noqa: S105 - a throwaway user of a throwaway database
LIMIT_MS = 300.0
DATABASE = f"akener_bench_dashboard_{os.getpid()}"  # runs by others never collide
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
NEXT_RE = re.compile(r'href="(/manage/api-keys\?[^"]*cursor=[^"]+)">Next page')


def pages(keys: int) -> list[tuple[str, str]]:
    """(label, path) of every page measured."""
    return [
        ("keys, newest first", "/manage/api-keys"),
        ("keys, by name", "/manage/api-keys?sort=name"),
        ("keys, least recently used", "/manage/api-keys?sort=last_used"),
        ("keys, search by name", f"/manage/api-keys?q=bulk-{keys // 2:07d}"[:-2]),
        ("keys, expiring within 7 days", "/manage/api-keys?expiry=expiring"),
        ("keys, expired + scope", "/manage/api-keys?expiry=expired&scope=deploys.write"),
        ("keys, inactive, by last used", "/manage/api-keys?status=INACTIVE&sort=-last_used"),
        ("keys, page 2 by name", "NEXT:/manage/api-keys?sort=name"),
        ("overview", "/manage"),
        ("key page", "KEY"),
        ("audit log", "/manage/audit"),
    ]


async def seed(url: str, count: int) -> str:
    """``count`` keys, usage on one in ten, and an owner; returns one key's id."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    today = now.date()
    first_id = ""
    try:
        async with engine.begin() as conn:
            batch: list[dict[str, Any]] = []
            usage: list[dict[str, Any]] = []
            for n in range(count):
                key_id = secrets.token_hex(16)
                first_id = first_id or key_id
                batch.append(
                    {
                        "id": key_id,
                        "name": f"bulk-{n:07d}",
                        "digest": secrets.token_hex(32),
                        "pepper_version": 1,
                        "masked_key": mask(generate_key()),
                        "status": "INACTIVE" if n % 7 == 0 else "ACTIVE",
                        "scopes": ["deploys.write"] if n % 5 == 0 else [],
                        "suspended_scopes": [],
                        "created_at": now - timedelta(seconds=count - n),
                        "created_by": "cli",
                        "last_used_at": now - timedelta(minutes=n) if n % 3 else None,
                        "expires_at": now + timedelta(days=(n % 400) - 30) if n % 11 == 0 else None,
                        "request_count": 0,
                    }
                )
                if n % 10 == 0:
                    usage += [
                        {"key_id": key_id, "day": today - timedelta(days=d), "count": n % 97 + d}
                        for d in range(0, 90, 3)
                    ]
                if len(batch) == 5000:
                    await conn.execute(insert(ApiKey), batch)
                    batch = []
            if batch:
                await conn.execute(insert(ApiKey), batch)
            for start in range(0, len(usage), 5000):
                await conn.execute(insert(KeyUsage), usage[start : start + 5000])
    finally:
        await engine.dispose()
    return first_id


async def add_owner(app: AkenerApp) -> None:
    """The owner, as ``akener users create`` would make them."""
    async with app.runtime.sessionmaker() as session:
        roles = await RoleRepository(session).get_by_names(["admin"])
        hashed = await passwords.hash_password(PASSWORD)
        session.add(
            User(email="owner@example.com", display_name="Owner", password_hash=hashed,
                 owner_flag=True, roles=roles)
        )  # fmt: skip
        await session.commit()


async def measure(
    url: str, count: int, runs: int, only: str = ""
) -> list[tuple[str, float, float]]:
    """Median and slowest milliseconds per page."""
    key_id = await seed(url, count)
    settings = Settings(database_url=url, secret_key=SECRET, _env_file=None)  # type: ignore[call-arg]
    app = AkenerApp(settings)
    results = []
    async with app.running():
        await add_owner(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as web:
            login = await web.get("/login")
            token = CSRF_RE.search(login.text)
            assert token
            data = {"email": "owner@example.com", "password": PASSWORD, "csrf_token": token[1]}
            assert (await web.post("/login", data=data)).status_code == 303
            for label, path in pages(count):
                if only not in label:
                    continue
                if path == "KEY":
                    path = f"/manage/api-keys/{key_id}"
                elif path.startswith("NEXT:"):
                    found = NEXT_RE.search((await web.get(path[5:])).text)
                    assert found, "no next page"
                    path = found[1].replace("&amp;", "&")
                times = []
                for _ in range(runs + 1):
                    started = time.perf_counter()
                    answer = await web.get(path)
                    times.append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200, (path, answer.status_code)
                times = times[1:]  # the first run warms caches
                results.append((label, statistics.median(times), max(times)))
    return results


async def pg_database(base: str, name: str, *, drop_only: bool = False) -> str:
    """A fresh PostgreSQL database for the run; its URL."""
    base = Settings(database_url=base, _env_file=None).database_url  # type: ignore[call-arg]
    engine = make_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if not drop_only:
                await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        await engine.dispose()
    return base.rsplit("/", 1)[0] + f"/{name}"


async def run(
    databases: list[str], counts: list[int], runs: int, pg_url: str, only: str = ""
) -> bool:
    """Print one table per database and key count; True when every median is under 300 ms."""
    ok = True
    for database in databases:
        for count in counts:
            with tempfile.TemporaryDirectory() as tmp:
                if database == "sqlite":
                    url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
                else:
                    url = await pg_database(pg_url, DATABASE)
                from akener.db.migrate import upgrade

                engine = make_engine(url)
                await upgrade(engine)
                await engine.dispose()
                started = time.perf_counter()
                rows = await measure(url, count, runs, only)
                print(f"\n{database}, {count:,} keys ({runs} runs each; set up and ran in "
                      f"{time.perf_counter() - started:.0f} s)")  # fmt: skip
                print(f"  {'page':<34} {'median ms':>10} {'max ms':>8}")
                for label, median, slowest in rows:
                    flag = "" if median < LIMIT_MS else "  over 300 ms"
                    ok = ok and median < LIMIT_MS
                    print(f"  {label:<34} {median:>10.1f} {slowest:>8.1f}{flag}")
                if database == "postgresql":
                    await pg_database(pg_url, DATABASE, drop_only=True)
    return ok


def main() -> None:
    """Parse the flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", default="10000,100000", help="key counts, comma-separated")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--only", default="", help="measure only pages whose label contains this")
    args = parser.parse_args()
    counts = [int(c) for c in args.keys.split(",")]
    ok = asyncio.run(run(args.databases.split(","), counts, args.runs, args.pg_url, args.only))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
