"""What the hot path records: per answer, one bucket increment and one addition, in memory.

A ``CheckRecorder`` counts the answers of one endpoint (``/authz``, the verify API, the
management API) by HTTP status, with their durations in fixed histogram buckets. It holds plain
Python lists and never touches a file, a lock or the Prometheus library: the per-process numbers
are copied out in the background (``akener.metrics.snapshot``) and added up across the server's
processes only when ``/metrics`` is read. Nothing is allocated per request once a status has been
seen (a new status allocates its one row, bounded by the few statuses akener answers).
"""

from __future__ import annotations

from bisect import bisect_left

# Upper bounds (seconds) of the latency buckets: /authz answers in tens of microseconds from the
# cache and in milliseconds from the database; the management API takes milliseconds.
BOUNDS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
ENDPOINTS: tuple[str, ...] = ("authz", "verify", "api")
_SUM = len(BOUNDS) + 1  # a row: one count per bucket (+Inf last), then the sum of durations
ROW_LENGTH = _SUM + 1


class CheckRecorder:
    """Answers of one endpoint by status: bucket counts (not cumulative) and duration sums."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: dict[int, list[float]] = {}

    def observe(self, status: int, seconds: float) -> None:
        """Count one answer (hot path: a dict lookup, a bisection, two additions)."""
        row = self.rows.get(status)
        if row is None:
            row = self.rows[status] = [0] * ROW_LENGTH
        row[bisect_left(BOUNDS, seconds)] += 1
        row[-1] += seconds  # the sum of durations

    def export(self) -> dict[str, list[float]]:
        """A copy of the rows, keyed by status as text (what a snapshot file holds)."""
        return {str(status): list(row) for status, row in self.rows.items()}


class ProcessRecorders:
    """The recorders of one process: one per endpoint, and the verify API's verdicts."""

    __slots__ = ("api", "authz", "verdicts", "verify")

    def __init__(self) -> None:
        self.authz = CheckRecorder()
        self.verify = CheckRecorder()
        self.api = CheckRecorder()
        # The verify API answers 200 for any key it could check: what it said is its verdict.
        self.verdicts: dict[str, int] = {}

    def verdict(self, code: str) -> None:
        """Count one verify API verdict (VALID, NOT_FOUND, INACTIVE, …)."""
        self.verdicts[code] = self.verdicts.get(code, 0) + 1

    def export(self) -> dict[str, dict[str, list[float]]]:
        """Every endpoint's rows."""
        return {name: getattr(self, name).export() for name in ENDPOINTS}
