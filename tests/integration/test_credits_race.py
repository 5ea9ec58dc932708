"""Credits at full scale: 10,000 concurrent requests against 1,000 credits, across the 2 worker
processes of one ``akener serve`` on PostgreSQL (issue 10: at most 1,000 and at least 990
admitted while demand lasts). A raw HTTP/1.1 client keeps the load generator cheap."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET
from tests.servers import AkenerServer, akener_cli, akener_env

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]
CREDITS = 1_000
REQUESTS = 10_000
CONNECTIONS = 200


async def _one_connection(
    host: str, port: int, key: str, todo: list[int], seen: list[tuple[int, str]]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        f"GET /authz HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n"
    ).encode()
    try:
        while todo:
            todo.pop()
            writer.write(request)
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length, remaining = 0, ""
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "x-akener-credits-remaining":
                    remaining = value.strip()
            await reader.readexactly(length)
            seen.append((status, remaining))
    finally:
        writer.close()


async def _storm(url: str, key: str) -> list[tuple[int, str]]:
    host, port = url.removeprefix("http://").split(":")
    todo = list(range(REQUESTS))
    seen: list[tuple[int, str]] = []
    await asyncio.gather(
        *(_one_connection(host, int(port), key, todo, seen) for _ in range(CONNECTIONS))
    )
    return seen


def test_ten_thousand_requests_on_two_workers_never_overspend_a_thousand_credits(
    database_url: str, tmp_path: Path
) -> None:
    env = akener_env(database_url, TEST_SECRET)
    made = akener_cli(
        env, tmp_path, "keys", "create", "--name", "paid", "--json", "--credits", str(CREDITS)
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    with AkenerServer(env, tmp_path / "serve", workers=2) as server:
        started = time.monotonic()
        seen = asyncio.run(_storm(server.url, key["key"]))
        took = time.monotonic() - started
    assert len(seen) == REQUESTS
    admitted = [int(left) for status, left in seen if status == 200]
    statuses = {status for status, _ in seen}
    assert statuses <= {200, 429, 503}, statuses
    assert 990 <= len(admitted) <= CREDITS, (len(admitted), took)
    # Each credit spent once: the remaining counts after each admitted request are all distinct.
    assert len(set(admitted)) == len(admitted) and min(admitted) >= 0
    listed = akener_cli(env, tmp_path, "keys", "list", "--json")
    by_name = {k["name"]: k for k in map(json.loads, listed.stdout.splitlines())}
    assert by_name["paid"]["credits"]["remaining"] == CREDITS - len(admitted)
    print(f"credits race: {len(admitted)} of {REQUESTS} admitted in {took:.1f} s")
