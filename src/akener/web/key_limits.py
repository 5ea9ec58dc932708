"""The key page's Limits form: owner ID, rate-limit windows, credits and allowed addresses.

Plain form fields (one window or address per line) parsed here, then one service call: the
grant rule in akener.keys.grants decides, exactly as for the API.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from akener.accounts.permissions import API_KEYS_WRITE
from akener.api.deps import AutoCommitRoute, get_runtime
from akener.errors import AkenerError, InvalidInput
from akener.keys import limits as lim
from akener.keys import service
from akener.web.csrf import check_csrf
from akener.web.deps import CurrentUser, DbSession, flash, see_other
from akener.web.forms import form_of, text
from akener.web.key_page import _render, key_url

router = APIRouter(
    prefix="/manage/api-keys", route_class=AutoCommitRoute, dependencies=[Depends(check_csrf)]
)
_WINDOW_LINE = re.compile(r"\s*([A-Za-z0-9_.\-]{1,64})\s+(\d{1,13})\s*/\s*(\d{1,6})\s*s?\s*")


def parse_windows(value: str) -> list[lim.Window]:
    """One window a line: ``NAME LIMIT/SECONDS`` (``requests 100/60``)."""
    windows = []
    for line in filter(str.strip, value.splitlines()):
        match = _WINDOW_LINE.fullmatch(line)
        if not match:
            raise InvalidInput(
                f"Rate limits: write each as NAME LIMIT/SECONDS, e.g. 'requests 100/60' "
                f"(not {line.strip()[:40]!r}).",
                field="rate_limits",
            )
        windows.append(lim.Window(match[1], int(match[2]), int(match[3])))
    return windows


def parse_credits(remaining: str, amount: str, interval: str) -> lim.Credits | None:
    """Empty remaining: unlimited. A refill needs an amount and daily or monthly."""
    if not remaining.strip():
        return None
    if not remaining.strip().isdigit() or len(remaining.strip()) > 16:
        raise InvalidInput("Credits must be a whole number, or empty for unlimited.", "credits")
    if not amount.strip():
        return lim.Credits(int(remaining))
    if not amount.strip().isdigit() or len(amount.strip()) > 16:
        raise InvalidInput("The refill amount must be a whole number.", field="credits")
    if interval not in ("daily", "monthly"):
        raise InvalidInput("Choose a daily or monthly refill.", field="credits")
    return lim.Credits(int(remaining), int(amount), "daily" if interval == "daily" else "monthly")


@router.post("/{key_id}/limits")
async def update_limits(
    request: Request, key_id: str, me: CurrentUser, session: DbSession
) -> Response:
    """Replace the key's owner ID, windows, credits and allowlist (Post/Redirect/Get)."""
    me.principal.require(API_KEYS_WRITE)
    form = await form_of(request)
    values = {
        name: text(form, name)
        for name in (
            "owner_id", "rate_limits", "credits", "refill_amount", "refill_interval",
            "allowed_ips",
        )
    }  # fmt: skip
    try:
        await service.update_key(
            session,
            me.principal,
            key_id,
            owner_id=values["owner_id"].strip() or None,
            rate_limits=parse_windows(values["rate_limits"]),
            credits=parse_credits(
                values["credits"], values["refill_amount"], values["refill_interval"]
            ),
            allowed_ips=[v.strip() for v in values["allowed_ips"].splitlines() if v.strip()],
            now=get_runtime(request).clock(),
        )
    except AkenerError as exc:
        if not isinstance(exc, InvalidInput) and exc.code != "FORBIDDEN":
            raise
        message = exc.message[:1].upper() + exc.message[1:]
        extra = {"limits_error": message, "limits_form": values}
        status = 422 if isinstance(exc, InvalidInput) else 403
        return await _render(request, session, me.principal, key_id, extra=extra,
                             status_code=status)  # fmt: skip
    flash(request, "Limits saved.")
    return see_other(key_url(key_id) + "#limits")
