"""schemathesis against /openapi.json of a real server, on every database, with all its checks.

The run is capped in examples so it fits the CI budget; ``tests/fuzz/hooks.py`` keeps the fuzzer
from touching the key it authenticates with. Streaming and address-fetching operations (the
change stream, webhooks) are excluded by path. The schemathesis pytest
plugin is not loaded (``-p no:schemathesis`` in pytest's addopts): this drives its CLI instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET
from tests.servers import AkenerServer, akener_cli, akener_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EXAMPLES = os.environ.get("AKENER_FUZZ_EXAMPLES", "15")
# Operations that stream, or would make akener fetch an address, are never fuzzed.
EXCLUDED_PATHS = r".*(stream|events|changes|webhook|hooks|callback).*"
SCOPES = ["api_keys.read", "api_keys.write", "api_keys.delete", "api_keys.verify", "audit.read"]


def test_schemathesis_finds_no_failure(database_url: str, tmp_path: Path) -> None:
    env = akener_env(database_url, TEST_SECRET)
    scopes = [arg for scope in SCOPES for arg in ("--scope", scope)]
    created = akener_cli(env, tmp_path, "keys", "create", "--name", "fuzzer", "--json", *scopes)
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    with AkenerServer(env, tmp_path) as server:
        run = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{server.url}/openapi.json",
                "--checks=all",
                f"--max-examples={EXAMPLES}",
                "--seed=20261203",
                "--generation-deterministic",
                f"--exclude-path-regex={EXCLUDED_PATHS}",
                "--header",
                f"Authorization: Bearer {key['key']}",
                "--no-color",
                "--request-timeout=10",
            ],
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
                "AKENER_FUZZ_KEY_ID": key["id"],
                "PYTHONPATH": str(ROOT),
            },
            cwd=ROOT / "tests" / "fuzz",
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        log = server.log_text()
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "Traceback" not in log and "unhandled" not in log, log[-4000:]
    # The fuzzer's own key is untouched: still the same secret, active, same scopes.
    listed = akener_cli(env, tmp_path, "keys", "list", "--json")
    mine = next(k for k in map(json.loads, listed.stdout.splitlines()) if k["id"] == key["id"])
    assert mine["status"] == "ACTIVE" and sorted(mine["scopes"]) == sorted(SCOPES)
    assert mine["masked_key"] == key["masked_key"] and mine["expires_at"] is None
