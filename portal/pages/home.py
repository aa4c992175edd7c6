"""The front page and the language switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from portal import i18n
from portal.web import Visitor, render, safe_return_to, see_other, set_cookie, settings_of

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, visitor: Visitor) -> HTMLResponse:
    """What the platform offers and, for the signed-in, where their work is."""
    return render(request, "home.html")


@router.get("/lang/{code}")
async def switch_language(
    request: Request, code: str, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    """Serve the portal in ``code`` (zh or en) from now on."""
    response = see_other(safe_return_to(next))
    if code in i18n.LANGUAGES:
        set_cookie(response, settings_of(request), i18n.LANGUAGE_COOKIE, code, 365 * 24 * 3600)
    return response
