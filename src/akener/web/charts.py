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
# Why a request was refused, in the order the stacked bars and tables show them, with the words
# a person reads (akener.verify.service.Verdict holds the codes).
REFUSAL_REASONS: tuple[tuple[str, str], ...] = (
    ("RATE_LIMITED", "rate limited"),
    ("USAGE_EXCEEDED", "out of credits"),
    ("IP_NOT_ALLOWED", "address not allowed"),
    ("INSUFFICIENT_SCOPE", "missing scope"),
    ("INACTIVE", "inactive"),
    ("EXPIRED", "expired"),
)
REASON_WORDS = dict(REFUSAL_REASONS)
Refused = dict[str, int]  # reason code -> refused requests on one day


def _requests(count: int) -> str:
    return f"{count:,} request{'' if count == 1 else 's'}"


def refused_words(refused: Refused) -> str:
    """``3 refused (2 rate limited, 1 inactive)``, or an empty string when none were."""
    total = sum(refused.values())
    if not total:
        return ""
    parts = [f"{refused[code]:,} {word}" for code, word in REFUSAL_REASONS if refused.get(code)]
    parts += [
        f"{n:,} {code.lower()}"
        for code, n in sorted(refused.items())
        if code not in REASON_WORDS and n
    ]
    return f"{total:,} refused ({', '.join(parts)})"


def sum_refused(refused: list[Refused]) -> Refused:
    """The reasons of several days added up."""
    total: Refused = {}
    for day in refused:
        for code, n in day.items():
            total[code] = total.get(code, 0) + n
    return total


def reasons_in(refused: list[Refused]) -> list[tuple[str, str]]:
    """The (code, words) of the refusal reasons that occur in ``refused``, in the chart's order:
    the legend and the table's columns."""
    seen = sum_refused(refused)
    return [(code, word) for code, word in REFUSAL_REASONS if seen.get(code)]


def usage_summary(counts: list[tuple[date, int]], refused: list[Refused] | None = None) -> str:
    """One sentence saying what the chart shows (for everyone, and for screen readers first)."""
    if not counts:
        return "No days to show."
    total = sum(n for _, n in counts)
    span = f"{len(counts)} day{'' if len(counts) == 1 else 's'}"
    turned_away = refused_words(sum_refused(refused or []))
    if turned_away:
        return f"{_requests(total)} accepted and {turned_away} in the last {span}."
    if total == 0:
        return f"No requests in the last {span}."
    busiest_day, busiest = max(counts, key=lambda item: (item[1], item[0]))
    active = sum(1 for _, n in counts if n)
    return (
        f"{_requests(total)} in the last {span} ({counts[0][0].isoformat()} to "
        f"{counts[-1][0].isoformat()}), on {active} of them; busiest day "
        f"{busiest_day.isoformat()} with {_requests(busiest)}."
    )


def render_usage_svg(
    counts: list[tuple[date, int]],
    label: str = "Requests per day",
    refused: list[Refused] | None = None,
) -> Markup:
    """A bar per day, oldest on the left; each bar names its day and count in a ``<title>``.

    Days without requests get a thin stub so every day stays visible and hoverable. With
    ``refused`` (one dict per day) holding any refusal, each day is a stack instead: accepted
    requests at the bottom, then one segment per refusal reason (render_stacked_svg).
    """
    if refused is not None and any(sum(day.values()) for day in refused):
        return render_stacked_svg(counts, refused, label)
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


def render_stacked_svg(
    counts: list[tuple[date, int]], refused: list[Refused], label: str = "Requests per day"
) -> Markup:
    """Accepted and refused requests per day as stacked bars, oldest on the left.

    Each day is a group (``role="img"``) named by one sentence, "day: N accepted, M refused
    (by reason)", also its ``<title>``; its segments carry classes ``accepted`` and
    ``refused-<reason>`` that akener.css colours, and the page shows the legend.
    """
    plot = HEIGHT - TOP - AXIS
    totals = [n + sum(r.values()) for (_, n), r in zip(counts, refused, strict=True)]
    peak = max(totals, default=0)
    slot = WIDTH / max(len(counts), 1)
    bar_width = round(max(slot - GAP, 1.0), 2)
    parts = [
        f'<svg class="usage-chart stacked-chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="group" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f'<line class="axis" x1="0" y1="{TOP + plot}" x2="{WIDTH}" y2="{TOP + plot}"/>',
    ]
    for index, ((day, accepted), day_refused) in enumerate(zip(counts, refused, strict=True)):
        x = round(index * slot + GAP / 2, 2)
        words = f"{day.isoformat()}: {accepted:,} accepted"
        turned_away = refused_words(day_refused)
        text = escape(f"{words}, {turned_away}" if turned_away else words)
        parts.append(f'<g class="day" role="img" aria-label="{text}"><title>{text}</title>')
        if not totals[index]:
            parts.append(
                f'<rect class="bar bar-zero" x="{x}" y="{TOP + plot - 1}" '
                f'width="{bar_width}" height="1"/>'
            )
        base = float(TOP + plot)
        segments = [("accepted", accepted)]
        segments += [
            (f"refused-{code.lower().replace('_', '-')}", day_refused.get(code, 0))
            for code, _ in REFUSAL_REASONS
        ]
        other = sum(n for code, n in day_refused.items() if code not in REASON_WORDS)
        segments.append(("refused-other", other))  # a reason a newer akener wrote
        for css, n in segments:
            if not n:
                continue
            height = max(round(plot * n / peak, 2), 1.0)
            base -= height
            parts.append(
                f'<rect class="bar {css}" x="{x}" y="{round(base, 2)}" '
                f'width="{bar_width}" height="{height}"/>'
            )
        parts.append("</g>")
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
