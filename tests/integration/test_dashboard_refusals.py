"""The key page and the overview split accepted requests from refusals by reason (issues 10, 12):
real requests through /authz, the usage flush, then the charts, their tables and the CSV."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import httpx

from akener.runtime import Runtime
from tests.factories import bearer, make_key, sign_in_owner

SVG = "{http://www.w3.org/2000/svg}"


def section(page: str, title_id: str) -> str:
    return page.split(f'id="{title_id}"')[1].split("</section>")[0]


def svg_of(part: str) -> ET.Element:
    markup = "<svg" + part.split("<svg", 1)[1].split("</svg>")[0] + "</svg>"
    return ET.fromstring(markup)  # noqa: S314 - our own output; must be well-formed XML


async def _traffic(client: httpx.AsyncClient, runtime: Runtime) -> tuple[str, str]:
    """A key with 3 accepted and 4 rate-limited requests and 2 refused for a missing scope; a
    second key with 1 accepted request. Returns both ids."""
    _, admin = await make_key(runtime, "admin")
    window = {"name": "requests", "limit": 3, "period_seconds": 86_400}
    made = await client.post(
        "/api/v1/keys",
        json={"name": "Limited <robot>", "scopes": ["api_keys.read"], "rate_limits": [window]},
        headers=bearer(admin),
    )
    assert made.status_code == 201, made.text
    key_id, key = made.json()["id"], made.json()["key"]
    other, other_key = await make_key(runtime, "Other", scopes=[])
    scoped = {"X-Akener-Required-Scope": "incidents.write"}
    codes = [(await client.get("/authz", headers=bearer(key))).status_code for _ in range(7)]
    codes += [(await client.get("/authz", headers={**bearer(key), **scoped})).status_code] * 1
    codes += [(await client.get("/authz", headers={**bearer(key), **scoped})).status_code]
    codes += [(await client.get("/authz", headers=bearer(other_key))).status_code]
    assert codes == [200, 200, 200, 429, 429, 429, 429, 403, 403, 200]
    await runtime.usage.flush()
    return key_id, other.id


async def test_key_page_stacks_accepted_and_refused_by_reason_with_a_table(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    key_id, _ = await _traffic(client, runtime)
    await sign_in_owner(client, runtime)
    today = datetime.now(UTC).date().isoformat()
    usage = section((await client.get(f"/manage/api-keys/{key_id}")).text, "usage-title")
    assert "3 requests accepted and 6 refused (4 rate limited, 2 missing scope)" in usage
    chart = svg_of(usage)
    days = chart.findall(f"{SVG}g")
    assert len(days) == 30
    label = f"{today}: 3 accepted, 6 refused (4 rate limited, 2 missing scope)"
    assert days[-1].get("aria-label") == label and days[-1].get("role") == "img"
    segments = days[-1].findall(f"{SVG}rect")
    assert [s.get("class") for s in segments] == [
        "bar accepted",
        "bar refused-rate-limited",
        "bar refused-insufficient-scope",
    ]
    heights = [float(s.get("height", "0")) for s in segments]
    assert heights[1] > heights[0] > heights[2]  # 4 > 3 > 2, to scale
    assert "Refused: rate limited" in usage and "Refused: missing scope" in usage  # legend
    table = usage.split("<table")[1].split("</table>")[0]
    assert '<th scope="col">Accepted</th>' in table
    first_row = table.split("<tbody>")[1].split("</tr>")[0]
    assert first_row.count("<td>") == 4 and f"<td>{today}</td><td>3</td><td>4</td><td>2</td>" in (
        first_row.replace("\n", "").replace(" ", "")
    )
    assert "Refused: inactive" not in usage  # only the reasons that occurred


async def test_overview_shows_refusals_by_reason_over_time_and_in_the_csv(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await _traffic(client, runtime)
    await sign_in_owner(client, runtime)
    page = (await client.get("/manage")).text
    thirty = section(page, "traffic-30-title")
    # 3 + 1 at /authz, and the admin key's POST that made the limited key.
    assert "5 requests accepted and 6 refused (4 rate limited, 2 missing scope)" in thirty
    assert len(svg_of(thirty).findall(f"{SVG}g")) == 30
    assert len(svg_of(section(page, "traffic-90-title")).findall(f"{SVG}g")) == 90
    answer = await client.get("/manage/overview/traffic-30.csv")
    assert answer.status_code == 200
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == [
        "day",
        "requests",
        "refused",
        "refused_rate_limited",
        "refused_usage_exceeded",
        "refused_ip_not_allowed",
        "refused_insufficient_scope",
        "refused_inactive",
        "refused_expired",
    ]
    assert rows[-1] == [
        datetime.now(UTC).date().isoformat(),
        "5",
        "6",
        "4",
        "0",
        "0",
        "2",
        "0",
        "0",
    ]
    assert sum(int(r[2]) for r in rows[1:]) == 6


async def test_without_refusals_the_chart_stays_plain_bars(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    key, plaintext = await make_key(runtime, "Calm", scopes=[])
    assert (await client.get("/authz", headers=bearer(plaintext))).status_code == 200
    await runtime.usage.flush()
    await sign_in_owner(client, runtime)
    usage = section((await client.get(f"/manage/api-keys/{key.id}")).text, "usage-title")
    assert svg_of(usage).findall(f"{SVG}g") == []
    assert len(svg_of(usage).findall(f"{SVG}rect")) == 30
    assert "chart-legend" not in usage and '<th scope="col">Requests</th>' in usage
