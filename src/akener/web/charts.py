"""Server-side charts: plain inline SVG, no script, no chart library, no inline style.

The page's Content-Security-Policy forbids inline style and script, so the SVG uses
presentation attributes and classes from akener.css only.
"""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

WIDTH = 600
HEIGHT = 150
TOP = 8  # room above the tallest bar
AXIS = 20  # room under the bars for the first and last date
GAP = 2


def _requests(count: int) -> str:
    return f"{count:,} request{'' if count == 1 else 's'}"


def usage_summary(counts: list[tuple[date, int]]) -> str:
    """One sentence saying what the chart shows (for everyone, and for screen readers first)."""
    if not counts:
        return "No days to show."
    total = sum(n for _, n in counts)
    span = f"{len(counts)} day{'' if len(counts) == 1 else 's'}"
    if total == 0:
        return f"No requests in the last {span}."
    busiest_day, busiest = max(counts, key=lambda item: (item[1], item[0]))
    active = sum(1 for _, n in counts if n)
    return (
        f"{_requests(total)} in the last {span} ({counts[0][0].isoformat()} to "
        f"{counts[-1][0].isoformat()}), on {active} of them; busiest day "
        f"{busiest_day.isoformat()} with {_requests(busiest)}."
    )


def render_usage_svg(counts: list[tuple[date, int]], label: str = "Requests per day") -> Markup:
    """A bar per day, oldest on the left; each bar names its day and count in a ``<title>``.

    Days without requests get a thin stub so every day stays visible and hoverable.
    """
    plot = HEIGHT - TOP - AXIS
    peak = max((n for _, n in counts), default=0)
    slot = WIDTH / max(len(counts), 1)
    bar_width = max(slot - GAP, 1.0)
    parts = [
        f'<svg class="usage-chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="group" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f'<line class="axis" x1="0" y1="{TOP + plot}" x2="{WIDTH}" y2="{TOP + plot}"/>',
    ]
    for index, (day, count) in enumerate(counts):
        height = round(plot * count / peak, 2) if peak else 0.0
        height = max(height, 1.0) if count else 1.0
        x = round(index * slot + GAP / 2, 2)
        y = round(TOP + plot - height, 2)
        label = escape(f"{day.isoformat()}: {_requests(count)}")
        css = "bar" if count else "bar bar-zero"
        parts.append(
            f'<rect class="{css}" role="img" aria-label="{label}" x="{x}" y="{y}" '
            f'width="{round(bar_width, 2)}" height="{height}"><title>{label}</title></rect>'
        )
    if counts:
        baseline = HEIGHT - 5
        first, last = escape(counts[0][0].isoformat()), escape(counts[-1][0].isoformat())
        parts.append(f'<text class="tick" x="0" y="{baseline}">{first}</text>')
        parts.append(
            f'<text class="tick" x="{WIDTH}" y="{baseline}" text-anchor="end">{last}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built from numbers and escaped text only


def render_ranking_svg(items: list[tuple[str, int]], label: str) -> Markup:
    """One horizontal bar per named item, longest first; the names are drawn by the page's table.

    Each bar carries its name and count in a ``<title>`` and an ``aria-label``.
    """
    row, bar_height = 26, 18
    height = max(len(items), 1) * row
    peak = max((n for _, n in items), default=0)
    parts = [
        f'<svg class="usage-chart ranking-chart" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'role="group" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for index, (name, count) in enumerate(items):
        width = max(round((WIDTH - 90) * count / peak, 2), 1.0) if peak else 1.0
        y = index * row + (row - bar_height) / 2
        text = escape(f"{name}: {_requests(count)}")
        parts.append(
            f'<rect class="bar" role="img" aria-label="{text}" x="0" y="{y}" width="{width}" '
            f'height="{bar_height}"><title>{text}</title></rect>'
            f'<text class="tick" x="{round(width + 6, 2)}" y="{y + 13}">{count:,}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built from numbers and escaped text only
