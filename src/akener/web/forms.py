"""Reading HTML form fields: always strings, with the one-line messages the pages show."""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import FormData
from starlette.requests import Request

from akener.errors import InvalidInput

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
NUL_MESSAGE = "Text fields must not contain NUL characters; nothing was changed."


async def refuse_nul(request: Request) -> None:
    """Refuse a NUL in any form field before a route sees it.

    No name, id or date holds one, and PostgreSQL refuses NUL in text parameters: without this
    check such input would reach the database and fail there instead of here, as a form error.
    Path ids and query parameters are left to the services and pages that read them (an unknown
    id is a 404; a filter shows its error in its own form); tests/integration/test_odd_input.py
    sends NUL in each of them.
    """
    values: list[str] = []
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and content_type.startswith(FORM_TYPES):
        form = await request.form()
        values += [v for v in (*form.keys(), *form.values()) if isinstance(v, str)]
    if any("\x00" in value for value in values):
        raise InvalidInput(NUL_MESSAGE)


async def form_of(request: Request) -> FormData:
    """The request's form (already parsed and cached by the CSRF check)."""
    return await request.form()


def text(form: FormData, name: str) -> str:
    """One text field; files and absent fields read as empty."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def texts(form: FormData, name: str) -> list[str]:
    """Every value of a repeated field (checkboxes)."""
    return [v for v in form.getlist(name) if isinstance(v, str)]


def words(value: str) -> list[str]:
    """Scopes typed in a text box, separated by spaces or commas."""
    return [w for w in value.replace(",", " ").split() if w]


def clean(field: str, cleaner: Callable[[str], str], value: str) -> str:
    """Apply a schema cleaner, turning its ValueError into InvalidInput for ``field``."""
    try:
        return cleaner(value)
    except ValueError as exc:
        message = str(exc)
        raise InvalidInput(message[:1].upper() + message[1:] + ".", field=field) from None


def clean_list(
    field: str, cleaner: Callable[[list[str]], list[str]], values: list[str]
) -> list[str]:
    """Like ``clean`` for a list-valued field."""
    try:
        return cleaner(values)
    except ValueError as exc:
        message = str(exc)
        raise InvalidInput(message[:1].upper() + message[1:] + ".", field=field) from None
