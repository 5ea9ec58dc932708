"""Manage → Overview: traffic across all keys and the keys that need care, each with a CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from akener.accounts.permissions import (
    API_KEYS_READ,
    AUDIT_READ,
    ROLES_READ,
    USERS_READ,
    Principal,
)
from akener.api.deps import AutoCommitRoute, get_runtime
from akener.errors import NotFound
from akener.keys import overview
from akener.web.charts import (
    REFUSAL_REASONS,
    reasons_in,
    render_ranking_svg,
    render_usage_svg,
    usage_summary,
)
from akener.web.deps import CurrentUser, DbSession, see_other
from akener.web.lifecycle import EXPIRING_WINDOW
from akener.web.templating import render

router = APIRouter(prefix="/manage", route_class=AutoCommitRoute)
UNUSED_DAYS = 30
BUSIEST_DAYS = 30
SHOWN = 20  # rows of each table; the CSV has up to CSV_ROWS
CSV_ROWS = 10_000
# The first page each permission opens, in the order of the navigation.
LANDINGS = (
    (API_KEYS_READ, "/manage"),
    (USERS_READ, "/manage/users"),
    (ROLES_READ, "/manage/roles"),
    (AUDIT_READ, "/manage/audit"),
)
FIGURES = ("traffic-30", "traffic-90", "busiest", "unused", "expiring")


def landing(actor: Principal) -> str:
    """Where a user starts: the overview with ``api_keys.read``, else their first page."""
    for permission, path in LANDINGS:
        if actor.has(permission):
            return path
    return "/manage/api-keys"  # says which permission is missing


async def _figures(
    session: AsyncSession, actor: Principal, now: datetime, *, rows: int
) -> dict[str, Any]:
    today = now.date()
    care = await overview.upkeep(
        session,
        actor,
        unused_days=UNUSED_DAYS,
        expiring_within=EXPIRING_WINDOW,
        now=now,
        limit=rows,
    )
    traffic_90 = await overview.traffic_by_day(session, actor, days=90, today=today)
    refused_90 = await overview.refused_by_day(session, actor, days=90, today=today)
    return {
        "traffic_30": traffic_90[-30:],  # the same days: one query for both charts
        "traffic_90": traffic_90,
        "refused_30": refused_90[-30:],
        "refused_90": refused_90,
        "busiest": await overview.busiest_keys(
            session, actor, days=BUSIEST_DAYS, today=today, limit=10 if rows <= SHOWN else 100
        ),
        "unused": care.unused,
        "unused_count": care.unused_count,
        "expiring": care.expiring,
        "expiring_count": care.expiring_count,
    }


@router.get("")
async def overview_page(request: Request, me: CurrentUser, session: DbSession) -> Response:
    """The overview for ``api_keys.read`` holders; everyone else goes to their first page."""
    actor = me.principal
    if not actor.has(API_KEYS_READ):
        return see_other(landing(actor))
    found = await _figures(session, actor, get_runtime(request).clock(), rows=SHOWN)
    charts: dict[str, Any] = {}
    for days in (30, 90):
        counts, refused = found[f"traffic_{days}"], found[f"refused_{days}"]
        label = f"Requests per day, last {days} days, accepted and refused"
        charts[f"traffic_{days}_svg"] = render_usage_svg(counts, label, refused=refused)
        charts[f"traffic_{days}_summary"] = usage_summary(counts, refused)
        charts[f"traffic_{days}_rows"] = list(zip(counts, refused, strict=True))
        charts[f"traffic_{days}_reasons"] = reasons_in(refused)
    busiest = [(t.key.name, t.requests) for t in found["busiest"]]
    context = {
        **found,
        **charts,
        "busiest_svg": render_ranking_svg(busiest, f"Busiest keys, last {BUSIEST_DAYS} days"),
        "unused_days": UNUSED_DAYS,
        "busiest_days": BUSIEST_DAYS,
    }
    return render(request, "overview/index.html", context)


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a quote first."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(header: list[str], rows: Iterable[Iterable[object]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    disposition = f'attachment; filename="akener-{filename}.csv"'
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


@router.get("/overview/{figure}.csv")
async def overview_csv(
    request: Request, figure: str, me: CurrentUser, session: DbSession
) -> Response:
    """One figure of the overview as CSV (up to 10,000 rows)."""
    actor = me.principal
    actor.require(API_KEYS_READ)
    if figure not in FIGURES:
        raise NotFound("No such figure.")
    found = await _figures(session, actor, get_runtime(request).clock(), rows=CSV_ROWS)
    if figure.startswith("traffic-"):
        days = figure.removeprefix("traffic-")
        header = ["day", "requests", "refused"]
        header += [f"refused_{code.lower()}" for code, _ in REFUSAL_REASONS]
        per_day = [
            [day, n, sum(refused.values()), *(refused.get(code, 0) for code, _ in REFUSAL_REASONS)]
            for (day, n), refused in zip(
                found[f"traffic_{days}"], found[f"refused_{days}"], strict=True
            )
        ]
        return _csv(header, per_day, f"requests-{days}-days")
    if figure == "busiest":
        ranked = [(t.key.id, t.key.name, t.requests) for t in found["busiest"]]
        return _csv(["key_id", "name", f"requests_{BUSIEST_DAYS}_days"], ranked, "busiest-keys")
    keys = found[figure]
    header = ["key_id", "name", "status", "created_at", "last_used_at", "expires_at"]
    rows = [(k.id, k.name, k.status, k.created_at, k.last_used_at, k.expires_at) for k in keys]
    return _csv(header, rows, f"{figure}-keys")
