"""On the host that made a change, no process accepts the key once the change's answer is sent.

PostgreSQL, two ``akener serve`` workers, many probing connections; each trial switches a freshly
made key off through the API while the probes run, and no probe sent after the answer arrived
may be accepted (the per-host change counter, akener.verify.hostcounter). More trials, and the
bound for other hosts, in bench/revocation_race.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from akener.runtime import Runtime
from akener.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import make_key
from tests.race import revocation_trial
from tests.servers import AkenerServer, akener_env

TRIALS = 30


@pytest.mark.postgres_only
async def test_no_worker_accepts_a_key_after_its_deactivation_was_answered(
    settings: Settings, tmp_path: Path, backend: str
) -> None:
    direct = await Runtime.start(settings)
    try:
        _, admin = await make_key(direct, "admin")
    finally:
        await direct.close()
    env = akener_env(settings.database_url, TEST_SECRET, AKENER_CHANGE_COUNTER_DIR=str(tmp_path))
    late: list[str] = []
    with AkenerServer(env, tmp_path / "w", workers=2) as server:
        for trial in range(TRIALS):
            answered, seen = await revocation_trial(
                server.url, admin, {"host": server.url}, connections=8, name=f"race{trial}"
            )
            probes = seen["host"]
            assert len(probes.seen) > 8 * 3
            late += [f"trial {trial}: {p}" for p in probes.accepted_after(answered)]
            assert any(p[2] == 401 for p in probes.seen)  # the change did land
    assert not late, late
