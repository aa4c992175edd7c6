"""Sign-in (authorization code + PKCE at identity), the callback, and sign-out."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from libs.common.database import SessionDep
from portal.auth.oidc import SignInFailed
from portal.web import (
    CsrfChecked,
    keeper,
    render,
    safe_return_to,
    see_other,
    set_cookie,
    settings_of,
)

router = APIRouter(prefix="/auth", include_in_schema=False)
log = structlog.get_logger("pingtai.portal.auth")

# Set at sign-out: the next sign-in asks for the password again, even if identity's own session
# in this browser is still alive (a plain sign-out ends only the portal's session).
SIGNED_OUT_COOKIE = "pingtai_portal_signed_out"


@router.get("/login")
async def login(
    request: Request, db: SessionDep, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    """Send the browser to identity's sign-in, remembering state, nonce and PKCE verifier."""
    settings = settings_of(request)
    prompt = "login" if request.cookies.get(SIGNED_OUT_COOKIE) else None
    cookie, url = await keeper(request).start_sign_in(
        db, return_to=safe_return_to(next), prompt=prompt
    )
    response = see_other(url)
    set_cookie(response, settings, settings.sign_in_cookie, cookie, settings.sign_in_ttl_s, "/auth")
    return response


@router.get("/callback")
async def callback(
    request: Request,
    db: SessionDep,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """identity's answer: make the session, or say sign-in failed."""
    settings = settings_of(request)
    if error or not code:
        log.info("sign_in_refused_by_identity", error=error)
        return render(request, "auth_failed.html", {"error": error}, status=400)
    try:
        row, cookie, return_to = await keeper(request).finish_sign_in(
            db, cookie_value=request.cookies.get(settings.sign_in_cookie), state=state, code=code
        )
    except SignInFailed as exc:
        log.warning("sign_in_failed", reason=str(exc))
        return render(request, "auth_failed.html", {"error": None}, status=400)
    log.info("signed_in", user_id=row.user_id, roles=row.roles)
    response = see_other(return_to)
    response.delete_cookie(settings.sign_in_cookie, path="/auth")
    response.delete_cookie(SIGNED_OUT_COOKIE, path="/")
    set_cookie(response, settings, settings.session_cookie, cookie, settings.session_ttl_s)
    return response


@router.post("/logout")
async def logout(
    request: Request,
    db: SessionDep,
    visitor: CsrfChecked,
    everywhere: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Sign out here (this session's refresh token revoked, the session dropped), or everywhere:
    every session of the person dropped, then identity's end-session endpoint ends the person's
    sessions and refresh tokens at identity itself, in every browser and application."""
    settings = settings_of(request)
    everywhere_too = everywhere == "1"
    end_session = keeper(request).end_session_url(visitor) if everywhere_too else None
    gone = await keeper(request).sign_out(db, visitor, everywhere=everywhere_too)
    log.info("signed_out", user_id=visitor.user_id, sessions=gone, everywhere=everywhere_too)
    response = see_other(end_session or "/?signed_out=1")
    response.delete_cookie(settings.session_cookie, path="/")
    set_cookie(response, settings, SIGNED_OUT_COOKIE, "1", None)
    return response


@router.get("/signed-out")
async def signed_out() -> Response:
    """Where identity's end-session endpoint sends the browser back."""
    return see_other("/?signed_out=1")
