"""First-run setup, sign-in and sign-out pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from akener.accounts import service as accounts
from akener.accounts.schemas import clean_display_name, clean_email
from akener.accounts.sessions import SignedIn, log_in, log_out, open_session, setup_token_valid
from akener.api.deps import AutoCommitRoute, client_of, get_runtime
from akener.errors import AkenerError, AuthenticationFailed, InvalidInput, NotFound, RateLimited
from akener.web.csrf import check_csrf
from akener.web.deps import (
    SESSION_COOKIE,
    DbSession,
    current_session,
    flash,
    login_policy,
    queue_cookie,
    safe_next,
    see_other,
)
from akener.web.forms import clean, form_of, text
from akener.web.templating import render

router = APIRouter(route_class=AutoCommitRoute, dependencies=[Depends(check_csrf)])


def _start_session(request: Request, signed: SignedIn, token: str) -> None:
    lifetime = int(login_policy(get_runtime(request)).session_lifetime.total_seconds())
    queue_cookie(request, SESSION_COOKIE, token, max_age=lifetime)
    request.state.page["csrf_token"] = signed.csrf_token


def _setup_token_ok(request: Request, token: str) -> bool:
    secret = get_runtime(request).settings.secret_key
    return secret is not None and setup_token_valid(secret.get_secret_value().encode(), token)


@router.get("/", include_in_schema=False)
async def home(signed: SignedIn | None = Depends(current_session)) -> Response:
    """The dashboard starts at Manage, which sends each user to the first page they may see."""
    return see_other("/manage" if signed else "/login")


@router.get("/setup")
async def setup_page(
    request: Request,
    session: DbSession,
    token: str = "",
) -> Response:
    """The one-time owner setup, reachable only through the link ``akener serve`` prints."""
    if await accounts.count_users(session):
        flash(request, "The owner account already exists. Sign in.", "info")
        return see_other("/login")
    if not _setup_token_ok(request, token):
        raise NotFound(
            "this setup link is not valid or has expired (links last 24 hours). Get a fresh one"
            " with 'akener users setup-link', or create the owner with"
            " 'akener users create --role admin'"
        )
    return render(request, "auth/setup.html", {"token": token, "values": {}})


@router.post("/setup")
async def setup_submit(request: Request, session: DbSession) -> Response:
    """Create the owner, sign them in, and open the dashboard."""
    form = await form_of(request)
    token = text(form, "token")
    if not _setup_token_ok(request, token):
        raise NotFound("this setup link is not valid or has expired")
    values = {"email": text(form, "email"), "display_name": text(form, "display_name")}
    try:
        email = clean("email", clean_email, values["email"])
        name = clean("display_name", clean_display_name, values["display_name"])
        if text(form, "password") != text(form, "password_confirm"):
            raise InvalidInput("The two passwords do not match.", field="password_confirm")
        user = await accounts.create_owner(
            session,
            email=email,
            display_name=name,
            password=text(form, "password"),
            client=client_of(request),
        )
    except AkenerError as exc:
        context = {
            "token": token,
            "values": values,
            "error": exc.message,
            "error_field": _field(exc),
        }
        return render(request, "auth/setup.html", context, status_code=_status(exc))
    signed, cookie = await open_session(session, user, login_policy(get_runtime(request)))
    _start_session(request, signed, cookie)
    flash(request, f"Welcome, {user.display_name}. You are the owner of this akener.")
    return see_other("/manage/api-keys")


def _field(exc: AkenerError) -> str | None:
    return getattr(exc, "field", None)


def _status(exc: AkenerError) -> int:
    return {"CONFLICT": 409, "RATE_LIMITED": 429, "UNAUTHORIZED": 401}.get(exc.code, 422)


@router.get("/login")
async def login_page(
    request: Request,
    session: DbSession,
    next: str = "",
    signed: SignedIn | None = Depends(current_session),
) -> Response:
    """The sign-in form (or the dashboard, when already signed in)."""
    if signed is not None:
        return see_other(safe_next(next, "/manage"))
    no_users = await accounts.count_users(session) == 0
    return render(
        request, "auth/login.html", {"next": safe_next(next, "/manage"), "no_users": no_users}
    )


@router.post("/login")
async def login_submit(request: Request, session: DbSession) -> Response:
    """Check the password (throttled) and start a session."""
    form = await form_of(request)
    email, target = text(form, "email"), safe_next(text(form, "next"), "/manage")
    address = client_of(request) or "unknown"
    try:
        signed, cookie = await log_in(
            session,
            email=email,
            password=text(form, "password"),
            address=address,
            policy=login_policy(get_runtime(request)),
        )
    except (AuthenticationFailed, RateLimited) as exc:
        # Returned, not raised: the failure just recorded must be committed.
        context = {"next": target, "email": email, "error": exc.message, "no_users": False}
        return render(request, "auth/login.html", context, status_code=_status(exc))
    _start_session(request, signed, cookie)
    return see_other(target)


@router.post("/logout")
async def logout(request: Request, session: DbSession) -> Response:
    """End this session on the server and forget the cookie."""
    await log_out(session, request.cookies.get(SESSION_COOKIE))
    queue_cookie(request, SESSION_COOKIE, None)
    flash(request, "You are signed out.", "info")
    return see_other("/login")
