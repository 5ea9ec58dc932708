"""The usage chart: a pure function from (day, count) pairs to inline SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

from akener.web.charts import HEIGHT, render_usage_svg, usage_summary

SVG = "{http://www.w3.org/2000/svg}"
START = date(2026, 11, 1)


def days(*counts: int) -> list[tuple[date, int]]:
    return [(START + timedelta(days=i), n) for i, n in enumerate(counts)]


def bars(markup: str) -> list[ET.Element]:
    root = ET.fromstring(str(markup))  # noqa: S314 - our own output; must be well-formed XML
    return root.findall(f"{SVG}rect")


def test_one_bar_per_day_in_order_with_a_title_naming_day_and_count() -> None:
    counts = days(3, 0, 1, 1200)
    found = bars(render_usage_svg(counts))
    assert len(found) == 4
    titles = [bar.find(f"{SVG}title").text for bar in found]  # type: ignore[union-attr]
    assert titles == [
        "2026-11-01: 3 requests",
        "2026-11-02: 0 requests",
        "2026-11-03: 1 request",
        "2026-11-04: 1,200 requests",
    ]
    assert [bar.get("aria-label") for bar in found] == titles
    xs = [float(bar.get("x", "nan")) for bar in found]
    assert xs == sorted(xs)  # oldest on the left


def test_heights_are_proportional_and_zero_days_stay_visible() -> None:
    found = bars(render_usage_svg(days(50, 100, 0, 25)))
    heights = [float(bar.get("height", "nan")) for bar in found]
    assert heights[1] > heights[0] > heights[3] > heights[2] > 0
    assert heights[0] == heights[1] / 2
    assert heights[2] == 1.0  # a stub, not a gap
    assert "bar-zero" in (found[2].get("class") or "")
    assert "bar-zero" not in (found[0].get("class") or "")
    bottoms = {round(float(b.get("y", "nan")) + float(b.get("height", "nan")), 2) for b in found}
    assert len(bottoms) == 1  # every bar stands on the same baseline
    assert max(heights) < HEIGHT


def test_thirty_empty_days_render_thirty_stubs_and_say_so() -> None:
    counts = days(*[0] * 30)
    assert len(bars(render_usage_svg(counts))) == 30
    assert usage_summary(counts) == "No requests in the last 30 days."


def test_summary_names_total_active_days_and_busiest_day() -> None:
    summary = usage_summary(days(3, 0, 7, 7, 1))
    assert summary.startswith("18 requests in the last 5 days (2026-11-01 to 2026-11-05)")
    assert "on 4 of them" in summary
    assert "busiest day 2026-11-04 with 7 requests" in summary  # ties go to the later day


def test_no_days_at_all() -> None:
    assert bars(render_usage_svg([])) == []
    assert usage_summary([]) == "No days to show."


def test_output_has_no_script_no_inline_style_and_first_and_last_dates() -> None:
    markup = str(render_usage_svg(days(1, 2)))
    assert "<script" not in markup and "style=" not in markup
    assert re.findall(r"<text[^>]*>([^<]*)</text>", markup) == ["2026-11-01", "2026-11-02"]


def test_stacked_days_name_every_reason_to_scale_without_inline_style() -> None:
    counts = days(4, 0, 0)
    refused = [{"RATE_LIMITED": 8}, {}, {"INACTIVE": 1, "<odd>": 2}]
    markup = str(render_usage_svg(counts, "Requests <all>", refused=refused))
    assert "style=" not in markup and "<script" not in markup and "<odd>" not in markup
    root = ET.fromstring(markup)  # noqa: S314 - our own output; must be well-formed XML
    assert root.get("aria-label") == "Requests <all>"
    groups = root.findall(f"{SVG}g")
    assert [g.get("aria-label") for g in groups] == [
        "2026-11-01: 4 accepted, 8 refused (8 rate limited)",
        "2026-11-02: 0 accepted",
        "2026-11-03: 0 accepted, 3 refused (1 inactive, 2 <odd>)",
    ]
    first = groups[0].findall(f"{SVG}rect")
    assert [r.get("class") for r in first] == ["bar accepted", "bar refused-rate-limited"]
    heights = [float(r.get("height", "0")) for r in first]
    assert abs(heights[1] - 2 * heights[0]) < 0.02  # to scale (rounded to 0.01)
    assert [r.get("class") for r in groups[1].findall(f"{SVG}rect")] == ["bar bar-zero"]
    third = [r.get("class") for r in groups[2].findall(f"{SVG}rect")]
    assert third == ["bar refused-inactive", "bar refused-other"]  # a reason this version lacks
    assert usage_summary(counts, refused) == (
        "4 requests accepted and 11 refused (8 rate limited, 1 inactive, 2 <odd>)"
        " in the last 3 days."
    )
