"""Limits across real processes: one ``akener serve --workers 4`` racing on credits (database)
and on a window shared through Redis (database 11 of the shared Redis, flushed here only)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from redis import Redis

from tests.conftest import TEST_SECRET
from tests.factories import bearer
from tests.helpers import redis_test_url
from tests.servers import AkenerServer, akener_cli, akener_env

REDIS_URL = redis_test_url(11)


async def _burst(url: str, key: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        return await asyncio.gather(
            *(http.get("/authz", headers=bearer(key)) for _ in range(count))
        )


def test_four_workers_never_overspend_credits_and_share_a_window(
    database_url: str, tmp_path: Path
) -> None:
    Redis.from_url(REDIS_URL).flushdb()
    env = akener_env(database_url, TEST_SECRET, AKENER_REDIS_URL=REDIS_URL)
    made = {}
    for name, args in (
        ("credits", ["--credits", "100"]),
        ("window", ["--rate-limit", "day=50/1d"]),
    ):
        done = akener_cli(env, tmp_path, "keys", "create", "--name", name, "--json", *args)
        assert done.returncode == 0, done.stderr
        made[name] = json.loads(done.stdout)
    with AkenerServer(env, tmp_path / "serve", workers=4) as server:
        paid = asyncio.run(_burst(server.url, made["credits"]["key"], 400))
        counted = asyncio.run(_burst(server.url, made["window"]["key"], 200))
    codes = [a.status_code for a in paid]
    assert codes.count(200) == 100 and codes.count(429) == 300, codes
    assert {a.json()["error"]["code"] for a in paid if a.status_code == 429} == {"USAGE_EXCEEDED"}
    left = sorted(int(a.headers["x-akener-credits-remaining"]) for a in paid if a.is_success)
    assert left == list(range(100))  # each credit spent exactly once
    windows = [a.status_code for a in counted]
    assert windows.count(200) == 50 and windows.count(429) == 150
    done = akener_cli(env, tmp_path, "keys", "list", "--json")
    by_name = {k["name"]: k for k in map(json.loads, done.stdout.splitlines())}
    assert by_name["credits"]["credits"]["remaining"] == 0
    Redis.from_url(REDIS_URL).flushdb()
