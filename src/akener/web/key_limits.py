"""The key page's Limits form: owner ID, rate-limit windows, credits and allowed addresses.

Plain form fields (one window or address per line) parsed here, then one service call: the
grant rule in akener.keys.grants decides, exactly as for the API.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from akener.accounts.permissions import API_KEYS_WRITE
from akener.api.deps import AutoCommitRoute, get_runtime
from akener.errors import AkenerError, InvalidInput
from akener.keys import service
from akener.web.csrf import check_csrf
from akener.web.deps import CurrentUser, DbSession, flash, see_other
from akener.web.forms import form_of, text
from akener.web.key_page import _render, key_url
from akener.web.limit_fields import parse_credits, parse_windows

router = APIRouter(
    prefix="/manage/api-keys", route_class=AutoCommitRoute, dependencies=[Depends(check_csrf)]
)


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
