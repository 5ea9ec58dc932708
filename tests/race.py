"""A revocation race: many connections probe a key while it is switched off through the API.

Shared by tests/integration/test_revocation_race.py (a few dozen trials in CI) and
bench/revocation_race.py (more trials, and the bound on other hosts).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from tests.factories import bearer


@dataclass
class Probes:
    """What the probes of one server saw: (sent, received, status) per request."""

    seen: list[tuple[float, float, int]] = field(default_factory=list)

    def accepted_after(self, instant: float) -> list[tuple[float, float, int]]:
        """Requests sent after ``instant`` that were accepted."""
        return [p for p in self.seen if p[0] > instant and p[2] == 200]

    def window(self, instant: float) -> float:
        """How long after ``instant`` a request sent then was still accepted (0: none was)."""
        return max((p[0] - instant for p in self.accepted_after(instant)), default=0.0)


async def _probe(url: str, key: str, stop: asyncio.Event, out: Probes, warm: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=10) as client:  # one connection per probe
        accepted = 0
        while not stop.is_set():
            sent = time.perf_counter()
            status = (await client.get(url + "/authz", headers=bearer(key))).status_code
            out.seen.append((sent, time.perf_counter(), status))
            accepted += status == 200
            if accepted >= 3:
                warm.set()


async def revocation_trial(
    change_url: str, admin: str, servers: dict[str, str], *, connections: int, name: str
) -> tuple[float, dict[str, Probes]]:
    """Create a key, probe it from ``connections`` connections per server, switch it off
    through ``change_url``; the instant the answer arrived and what each server's probes saw."""
    async with httpx.AsyncClient(timeout=10) as api:
        made = await api.post(
            change_url + "/api/v1/keys", headers=bearer(admin), json={"name": name, "scopes": []}
        )
        assert made.status_code == 201, made.text
        key_id, key = made.json()["id"], made.json()["key"]
        stop = asyncio.Event()
        seen = {label: Probes() for label in servers}
        warm: list[asyncio.Event] = []
        tasks = []
        for label, url in servers.items():
            for _ in range(connections):
                warm.append(asyncio.Event())
                tasks.append(asyncio.create_task(_probe(url, key, stop, seen[label], warm[-1])))
        try:
            await asyncio.wait_for(asyncio.gather(*(w.wait() for w in warm)), 60)
            changed = await api.patch(
                f"{change_url}/api/v1/keys/{key_id}",
                headers=bearer(admin),
                json={"status": "INACTIVE"},
            )
            answered = time.perf_counter()
            assert changed.status_code == 200, changed.text
            await asyncio.sleep(0.15)  # keep probing past the NOTIFY bound
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
    return answered, seen
