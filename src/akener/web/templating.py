"""Jinja2 templates (autoescaped) and the few helpers every page render uses."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from akener.accounts.permissions import describe_scope
from akener.audit.actions import action_label
from akener.keys.tokens import table_tail
from akener.web.lifecycle import expires_soon, key_state, relative

_STAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _when(value: datetime | None, empty: str = "Never") -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else empty


def audit_value(value: Any, field: str = "") -> str:
    """One value recorded in an audit event's changes, as a person reads it."""
    if field == "masked_key" and isinstance(value, str):
        return "…" + value[-4:]  # the rest is asterisks; the last four tell keys apart
    if value is None or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(audit_value(v) for v in value)
    if isinstance(value, str):
        if _STAMP_RE.match(value):
            try:
                return _when(datetime.fromisoformat(value))
            except ValueError:
                return value
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def make_environment() -> Environment:
    """The template environment: autoescape on for every HTML file."""
    env = Environment(
        loader=PackageLoader("akener.web", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["tail"] = table_tail
    env.filters["scope"] = describe_scope
    env.filters["relative"] = relative
    env.filters["action"] = action_label
    env.filters["audit_value"] = audit_value
    env.globals["key_state"] = key_state
    env.globals["expires_soon"] = expires_soon
    return env


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` with the request's page context (user, CSRF token, flash)."""
    env: Environment = request.app.state.templates
    page: dict[str, Any] = dict(getattr(request.state, "page", {}))
    page.update(context or {})
    page["request"] = request
    html = env.get_template(template).render(page)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def render_fragment(request: Request, template: str, context: dict[str, Any]) -> str:
    """A partial rendered to a string (e.g. a table row sent to the page's script)."""
    env: Environment = request.app.state.templates
    page: dict[str, Any] = dict(getattr(request.state, "page", {}))
    page.update(context)
    return env.get_template(template).render(page)
