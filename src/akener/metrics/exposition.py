"""The one module that speaks Prometheus: added-up numbers in, the text format out.

Every metric akener exports is defined here (docs/metrics.md lists them). The registry is built
per read from the totals of ``akener.metrics.snapshot``; prometheus_client renders it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from akener import __version__
from akener.metrics.probes import WebhookQueue
from akener.metrics.recorder import BOUNDS
from akener.metrics.snapshot import Totals

_LE = [f"{bound:g}" for bound in BOUNDS] + ["+Inf"]


def _checks(totals: Totals) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "akener_requests",
        "Answers by endpoint (authz, verify, api) and HTTP status.",
        labels=["endpoint", "code"],
    )
    latency = HistogramMetricFamily(
        "akener_request_duration_seconds",
        "Time akener took to answer, by endpoint and HTTP status (the server's own time excluded).",
        labels=["endpoint", "code"],
    )
    for endpoint, rows in sorted(totals.checks.items()):
        for code, row in sorted(rows.items()):
            counts, total_seconds = row[:-1], row[-1]
            cumulative, running = [], 0.0
            for le, count in zip(_LE, counts, strict=True):
                running += count
                cumulative.append((le, running))
            requests.add_metric([endpoint, code], running)
            latency.add_metric([endpoint, code], cumulative, total_seconds)
    yield requests
    yield latency
    verdicts = CounterMetricFamily(
        "akener_verify_verdicts",
        "Verdicts of the verify API (VALID, NOT_FOUND, INACTIVE, INSUFFICIENT_SCOPE, ...).",
        labels=["verdict"],
    )
    for code, count in sorted(totals.verdicts.items()):
        verdicts.add_metric([code], count)
    yield verdicts


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _cache(totals: Totals) -> Iterator[Metric]:
    lookups = CounterMetricFamily(
        "akener_cache_lookups",
        "Key cache lookups: hit (answered from memory, valid or unknown key) or miss.",
        labels=["result"],
    )
    lookups.add_metric(["hit"], totals.counters.get("cache_hits", 0))
    lookups.add_metric(["miss"], totals.counters.get("cache_misses", 0))
    yield lookups
    entries = GaugeMetricFamily(
        "akener_cache_entries",
        "Entries in the key caches of the live processes: stored keys, and unknown keys.",
        labels=["kind"],
    )
    entries.add_metric(["key"], totals.sums.get("cache_entries_known", 0))
    entries.add_metric(["unknown"], totals.sums.get("cache_entries_unknown", 0))
    yield entries


def _listener(totals: Totals) -> Iterator[Metric]:
    if "listener_up" not in totals.sums:
        return  # SQLite: changes are seen without a listener
    yield _gauge(
        "akener_listener_up",
        "1 when every live process holds its PostgreSQL LISTEN connection, else 0.",
        totals.lowest["listener_up"],
    )
    processes = GaugeMetricFamily(
        "akener_listener_processes",
        "Live processes whose change listener is up or down (down: cache bypassed).",
        labels=["state"],
    )
    up = totals.sums["listener_up"]
    processes.add_metric(["up"], up)
    processes.add_metric(["down"], totals.live - up)
    yield processes
    yield _counter(
        "akener_listener_connects",
        "Times a process (re)connected its change listener.",
        totals.counters.get("listener_connects", 0),
    )


def _usage(totals: Totals) -> Iterator[Metric]:
    yield _gauge(
        "akener_usage_flush_lag_seconds",
        "Seconds since the process that flushed least recently last wrote its usage counts.",
        totals.highest.get("usage_flush_lag_seconds", 0),
    )
    yield _gauge(
        "akener_usage_pending_requests",
        "Accepted requests counted in memory, not yet written (lost if a process crashes).",
        totals.sums.get("usage_pending_requests", 0),
    )
    yield _counter(
        "akener_usage_flush_failures",
        "Usage flushes that failed (their counts are kept for the next flush).",
        totals.counters.get("usage_flush_failures", 0),
    )
    yield _counter(
        "akener_usage_lost_requests",
        "Accepted requests whose usage could not be written before their process stopped.",
        totals.counters.get("usage_lost_requests", 0),
    )


def _pool(totals: Totals) -> Iterator[Metric]:
    yield _gauge(
        "akener_db_pool_in_use",
        "Database connections checked out of the live processes' pools.",
        totals.sums.get("db_pool_in_use", 0),
    )
    yield _gauge(
        "akener_db_pool_size",
        "Configured pool size, added over the live processes.",
        totals.sums.get("db_pool_size", 0),
    )


def _webhooks(queue: WebhookQueue | None) -> Iterator[Metric]:
    yield _gauge(
        "akener_database_up",
        "1 when the database answered this scrape's queue read, else 0.",
        0 if queue is None else 1,
    )
    if queue is None:
        return
    deliveries = GaugeMetricFamily(
        "akener_webhook_deliveries",
        "Webhook deliveries not delivered: pending (waiting or retrying) or failed (given up).",
        labels=["state"],
    )
    deliveries.add_metric(["pending"], queue.pending)
    deliveries.add_metric(["failed"], queue.failed)
    yield deliveries
    yield _gauge(
        "akener_webhook_pending_events",
        "Events with at least one pending delivery.",
        queue.pending_events,
    )
    yield _gauge(
        "akener_webhook_oldest_pending_seconds",
        "Age of the oldest pending delivery (0 when none).",
        queue.oldest_pending_seconds,
    )


class _Collector(Collector):
    def __init__(self, totals: Totals, queue: WebhookQueue | None) -> None:
        self.totals = totals
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        totals = self.totals
        info = GaugeMetricFamily(
            "akener_build_info", "The running version (always 1).", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info
        processes = GaugeMetricFamily(
            "akener_processes",
            "Server processes that reported: live, or ended (their counters still count).",
            labels=["state"],
        )
        processes.add_metric(["live"], totals.live)
        processes.add_metric(["ended"], totals.ended)
        yield processes
        yield from _checks(totals)
        yield from _cache(totals)
        yield from _listener(totals)
        yield from _usage(totals)
        yield from _pool(totals)
        yield from _webhooks(self.queue)


def render(totals: Totals, queue: WebhookQueue | None) -> bytes:
    """The Prometheus text exposition of the server's numbers."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(totals, queue))
    return generate_latest(registry)
