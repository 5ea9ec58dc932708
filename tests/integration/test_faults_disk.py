"""A full or read-only disk: start-up is one ``error:`` line and exit 1; a running server
answers 503 saying the disk is full, acknowledges nothing it did not keep, and writes again
once space is back. The disks are real small tmpfs mounts (tests/disks.py)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import disks
from tests.conftest import TEST_SECRET
from tests.factories import bearer
from tests.servers import AKENER, AkenerServer, akener_cli, akener_env, free_port


@pytest.fixture
def disk() -> Iterator[Path]:
    """A 4 MB tmpfs of this test's own."""
    reason = disks.available()
    if reason:
        # CI must never pass by skipping fault tests; a local run without root may.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(reason)
    with disks.tmpfs("4m") as where:
        yield where


def _serve(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AKENER, "serve", "--port", str(free_port())],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize("secret", [TEST_SECRET, None], ids=["database", "secret-file"])
def test_serve_on_a_full_disk_is_one_error_line(disk: Path, secret: str | None) -> None:
    disks.fill(disk)
    line = _one_error_line(_serve(akener_env(None, secret), disk))
    # With no secret yet, either the new database or the generated .env is the first write to
    # fail; both say the disk is full.
    assert "disk is full" in line or ("cannot write" in line and "No space left" in line), line
    assert not (disk / ".env").exists() or (disk / ".env").read_text() == ""


@pytest.mark.parametrize("secret", [TEST_SECRET, None], ids=["database", "secret-file"])
def test_serve_in_a_read_only_directory_is_one_error_line(disk: Path, secret: str | None) -> None:
    disks.read_only(disk)
    line = _one_error_line(_serve(akener_env(None, secret), disk))
    assert "read-only" in line.lower(), line


def test_a_full_disk_answers_503_and_keeps_every_acknowledged_key(disk: Path) -> None:
    env = akener_env(None, TEST_SECRET)
    with AkenerServer(env, disk) as server:
        created = akener_cli(env, disk, "keys", "create", "--name", "admin", "--scope",
                             "api_keys.read", "--scope", "api_keys.write")  # fmt: skip
        admin = created.stdout.strip()
        ballast = disks.fill(disk)
        acknowledged, refused = [], None
        for n in range(2000):  # the WAL has some room left from earlier writes; use it up
            name = f"key {n} " + "x" * 80
            answer = httpx.post(
                server.url + "/api/v1/keys", json={"name": name}, headers=bearer(admin), timeout=30
            )
            if answer.status_code == 201:
                acknowledged.append(name)
                continue
            refused = answer
            break
        assert refused is not None, "the disk never filled up"
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == {
            "code": "SERVICE_UNAVAILABLE",
            "message": "the database's disk is full; nothing was saved",
        }
        # Reading still works on a full disk: verification and the API's list.
        assert httpx.get(server.url + "/authz", headers=bearer(admin)).status_code == 200
        read = httpx.get(server.url + "/api/v1/keys", headers=bearer(admin), timeout=30)
        assert read.status_code == 200, read.text
        ballast.unlink()
        listed = akener_cli(env, disk, "keys", "list", "--json")
        names = {json.loads(line)["name"] for line in listed.stdout.splitlines()}
        assert names == {"admin", *acknowledged}  # nothing lost, nothing half-written
        again = httpx.post(
            server.url + "/api/v1/keys", json={"name": "after"}, headers=bearer(admin), timeout=30
        )
        assert again.status_code == 201
    assert "Traceback" not in server.log_text()
