"""Limit options of ``akener keys create`` and ``akener keys update``, on every database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET
from tests.integration.test_serve import run_cli


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AKENER_DATABASE_URL", database_url)
    monkeypatch.setenv("AKENER_SECRET_KEY", TEST_SECRET)


@pytest.mark.usefixtures("cli_env")
def test_keys_create_and_update_set_and_clear_limits(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        monkeypatch, capsys, "keys", "create", "--name", "limited", "--json",
        "--owner-id", "customer_42", "--rate-limit", "requests=100/1m",
        "--rate-limit", "daily=5000/1d", "--credits", "1000", "--refill", "1000/monthly",
        "--allow-ip", "10.0.0.0/8", "--allow-ip", "2001:db8::/32",
    )  # fmt: skip
    assert code == 0, err
    made = json.loads(out)
    assert made["owner_id"] == "customer_42"
    assert made["rate_limits"] == [
        {"name": "requests", "limit": 100, "period_seconds": 60},
        {"name": "daily", "limit": 5000, "period_seconds": 86400},
    ]
    assert made["credits"]["remaining"] == 1000
    assert made["credits"]["refill"] == {"amount": 1000, "interval": "monthly"}
    assert made["allowed_ips"] == ["10.0.0.0/8", "2001:db8::/32"]
    assert "owner customer_42" in err and "1000 credits" in err
    code, _, err = run_cli(
        monkeypatch, capsys, "keys", "update", made["id"], "--no-owner", "--no-rate-limits",
        "--unlimited-credits", "--any-ip",
    )  # fmt: skip
    assert code == 0, err
    assert "no limits" in err
    code, out, _ = run_cli(monkeypatch, capsys, "keys", "list", "--json")
    listed = json.loads(out.splitlines()[0])
    assert listed["owner_id"] is None and listed["credits"] is None
    assert listed["rate_limits"] == [] and listed["allowed_ips"] == []


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--rate-limit", "requests=100"], "NAME=LIMIT/PERIOD"),
        (["--rate-limit", "requests=0/1m"], "limit must be between"),
        (["--rate-limit", "requests=1/2d"], "--rate-limit period"),
        (["--refill", "10/daily"], "--refill needs --credits"),
        (["--credits", "5", "--refill", "10/weekly"], "AMOUNT/daily"),
        (["--credits", "-1"], "remaining"),
        (["--allow-ip", "10.0.0.1/8"], "CIDR"),
        (["--owner-id", "bad id"], "owner_id"),
    ],
)
def test_bad_limit_options_are_refused_and_create_nothing(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    words: str,
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "keys", "create", "--name", "x", *args)
    assert (code, out) == (1, ""), err
    assert words in err
    code, out, _ = run_cli(monkeypatch, capsys, "keys", "list", "--json")
    assert out == ""
