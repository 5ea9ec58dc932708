"""A process's metrics: its recorders, its snapshot file and the background task writing it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from akener.db.errors import RateLimitedLog
from akener.metrics.probes import webhook_queue
from akener.metrics.snapshot import PUBLISH_SECONDS, ProcessSources, SnapshotFile, Totals, gather

log = logging.getLogger("akener.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus's text format


class MetricsService:
    """Publishes this process's numbers for the others and renders the server's on demand."""

    def __init__(self, sources: ProcessSources, directory: Path | None) -> None:
        self.sources = sources
        self.recorders = sources.recorders
        self.file: SnapshotFile | None = None
        if directory is not None:
            try:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                self.file = SnapshotFile(directory)
            except OSError as exc:  # still serve; /metrics then shows this process only
                log.warning(
                    "metrics directory %s unusable (%s): each process reports itself",
                    directory,
                    exc,
                )
        self._warn = RateLimitedLog(log)

    def publish(self) -> None:
        """Write this process's numbers where the other processes read them."""
        if self.file is not None:
            self.file.write(self.sources.snapshot())

    async def run(self, every: float = PUBLISH_SECONDS) -> None:
        """Publish every ``every`` seconds until cancelled."""
        while True:
            self.publish()
            await asyncio.sleep(every)

    def totals(self) -> Totals:
        """Every process's numbers added up (this one's fresh)."""
        return gather(self.sources, self.file)

    async def exposition(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, bound: float
    ) -> bytes:
        """The Prometheus text for ``/metrics``; the webhook queue read takes at most ``bound``."""
        # prometheus_client is imported on the first scrape, not by every worker at start-up.
        from akener.metrics.exposition import render

        queue = await webhook_queue(sessionmaker, bound=bound, warn=self._warn)
        return render(self.totals(), queue)
