"""The metrics' pieces: recording, adding processes up, the exposition, docs and dashboard."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from akener.metrics.exposition import render
from akener.metrics.probes import Readiness, WebhookQueue
from akener.metrics.recorder import BOUNDS, ROW_LENGTH, CheckRecorder, ProcessRecorders
from akener.metrics.snapshot import SnapshotFile, Totals

ROOT = Path(__file__).resolve().parents[2]


def _snapshot(pid: int, authz: dict[str, list[float]], **gauges: float) -> dict[str, object]:
    return {
        "pid": pid,
        "checks": {"authz": authz, "verify": {}, "api": {}},
        "counters": {"cache_hits": 10, "cache_misses": 1, "listener_connects": 1},
        "gauges": {"cache_entries_known": 5, "usage_flush_lag_seconds": 2.0, **gauges},
    }


def test_observe_puts_each_duration_in_its_bucket() -> None:
    recorder = CheckRecorder()
    recorder.observe(200, 0.00005)  # below the first bound
    recorder.observe(200, BOUNDS[3])  # on a bound: "le" includes it
    recorder.observe(200, 60.0)  # past the last bound: +Inf
    recorder.observe(401, 0.001)
    row = recorder.rows[200]
    assert len(row) == ROW_LENGTH
    assert row[0] == 1 and row[3] == 1 and row[len(BOUNDS)] == 1
    assert sum(row[:-1]) == 3
    assert row[-1] == 0.00005 + BOUNDS[3] + 60.0
    assert set(ProcessRecorders().export()) == {"authz", "verify", "api"}


def test_counters_add_every_process_and_gauges_only_live_ones() -> None:
    row = [0.0] * ROW_LENGTH
    row[0], row[-1] = 4, 0.0002
    totals = Totals()
    totals.add(_snapshot(1, {"200": row}, listener_up=1), live=True)
    totals.add(_snapshot(2, {"200": row}, listener_up=0), live=True)
    totals.add(_snapshot(3, {"200": row, "401": [1] * 3}, listener_up=1), live=False)
    assert totals.checks["authz"]["200"][0] == 12  # the ended process still counts
    assert "401" not in totals.checks["authz"]  # a row of the wrong length is ignored
    assert totals.counters["cache_hits"] == 30
    assert totals.sums["cache_entries_known"] == 10  # live processes only
    assert totals.lowest["listener_up"] == 0 and totals.sums["listener_up"] == 1
    assert (totals.live, totals.ended) == (2, 1)
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(render(totals, None).decode())
        for s in family.samples
    }
    bucket = "akener_request_duration_seconds_bucket"
    assert found[(bucket, (("code", "200"), ("endpoint", "authz"), ("le", "0.0001")))] == 12
    assert found[(bucket, (("code", "200"), ("endpoint", "authz"), ("le", "+Inf")))] == 12
    assert found[("akener_requests_total", (("code", "200"), ("endpoint", "authz")))] == 12
    assert found[("akener_listener_up", ())] == 0
    assert found[("akener_listener_processes", (("state", "down"),))] == 1
    assert found[("akener_database_up", ())] == 0  # the queue could not be read
    assert not any(name.startswith("akener_webhook") for name, _ in found)


def test_snapshot_files_round_trip_and_skip_garbage(tmp_path: Path) -> None:
    mine, other = SnapshotFile(tmp_path), SnapshotFile(tmp_path)
    other.path = tmp_path / "process-999999-abcd.json"
    other.write(_snapshot(999999, {}))
    mine.write(_snapshot(os.getpid(), {}))
    (tmp_path / "process-1-x.json").write_text("{not json")
    (tmp_path / "process-2-x.json").write_text("[1, 2]")
    assert [s["pid"] for s in mine.others()] == [999999]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_lost_listener_does_not_fail_readiness() -> None:
    assert Readiness("ok", "current", "down").ready
    assert Readiness("ok", "newer", "up").ready
    assert not Readiness("ok", "behind", "up").ready
    assert not Readiness("timeout", "unknown", "up").ready


def _exported_names() -> set[str]:
    totals = Totals()
    row = [1.0] * ROW_LENGTH
    totals.add(_snapshot(1, {"200": row}, listener_up=1), live=True)
    text = render(totals, WebhookQueue(1, 1, 0, 3.0)).decode()
    return {family.name for family in text_string_to_metric_families(text)}


def test_every_metric_is_documented_and_the_dashboard_uses_only_real_ones() -> None:
    exported = _exported_names()
    docs = (ROOT / "docs" / "metrics.md").read_text()
    for name in exported:
        assert f"`{name}" in docs, name
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    used = {
        re.sub(r"_(bucket|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"akener_[a-z_]+", target["expr"])
    }
    assert used, "the dashboard queries nothing"
    assert used <= exported, used - exported


def test_the_metrics_allowlist_matches_addresses_and_networks() -> None:
    from akener.ops.handler import _in
    from akener.verify.throttle import parse_networks

    allowed = parse_networks("10.0.5.20, 192.168.0.0/24, 2001:db8::/32")
    assert _in("10.0.5.20", allowed)
    assert _in("192.168.0.77", allowed)
    assert _in("::ffff:10.0.5.20", allowed)  # an IPv4 client of a server bound to "::"
    assert _in("2001:db8::1", allowed)
    assert not _in("10.0.5.21", allowed)
    assert not _in("not an address", allowed)
    assert not _in(None, allowed)
    assert not _in("10.0.5.20", ())
