"""``/oauth2/logout``: the end-session endpoint (OpenID Connect RP-Initiated Logout 1.0)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from libs.common.database import SessionDep
from services.identity.oauth import pages
from services.identity.oauth.authorize import service as authorize_service
from services.identity.oauth.authorize.router import BROWSER_COOKIE, browser_token, set_cookie
from services.identity.oauth.dependencies import IssuerDep, SettingsDep
from services.identity.oauth.logout import service as logout_service
from services.identity.oauth.logout.service import MAX_PARAMETER, LogoutRequestInvalid
from services.identity.oauth.signin import service as signin_service
from services.identity.settings import IdentitySettings

router = APIRouter(prefix="/oauth2", tags=["OpenID Connect"])

LOGOUT_ACTION = "/oauth2/logout"
PARAMETERS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")

_PAGES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/html": {}}, "description": "The confirmation, or signed out"},
    303: {"description": "Back to the client's registered post-logout address"},
    400: {"content": {"text/html": {}}, "description": "The request cannot be honoured"},
}


def _parameters(items: list[tuple[str, object]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in items:
        if key in (*PARAMETERS, "csrf_token") and isinstance(value, str):
            if key in found or len(value) > MAX_PARAMETER:
                return {"_invalid": key}
            found[key] = value
    return found


def _csrf_for(request: Request, settings: IdentitySettings) -> tuple[str, str, bool]:
    browser, new = browser_token(request)
    return browser, authorize_service.csrf_token(
        secret_key=settings.secret_key, browser_token=browser
    ), new  # fmt: skip


async def _end_session(
    request: Request,
    session: SessionDep,
    settings: IdentitySettings,
    issuer: IssuerDep,
    params: dict[str, str],
) -> Response:
    if "_invalid" in params:
        detail = f"{params['_invalid']} is repeated or too long."
        return pages.error_page("invalid_logout", detail=detail)
    try:
        asked = await logout_service.read_request(session=session, issuer=issuer, params=params)
    except LogoutRequestInvalid as exc:
        return pages.error_page("invalid_logout", detail=str(exc))
    here = await signin_service.find_session(
        session=session, token=request.cookies.get(settings.oauth_session_cookie)
    )
    user_id = asked.user_id
    if user_id is None:
        # Nothing proves the client asked: the person confirms (RP-Initiated Logout §2), with a
        # form bound to this browser.
        browser, csrf, new = _csrf_for(request, settings)
        sent = params.get("csrf_token")
        if request.method != "POST" or sent is None or not hmac.compare_digest(sent, csrf):
            hidden = {k: v for k, v in params.items() if k in PARAMETERS and k != "id_token_hint"}
            page = pages.render(
                "logout.html",
                action=LOGOUT_ACTION,
                hidden=hidden,
                csrf_token=csrf,
                client_name=asked.client.name if asked.client else None,
                signed_in=here is not None,
            )
            if new:
                set_cookie(
                    page, settings, BROWSER_COOKIE, browser, settings.oauth_sign_in_form_ttl_s
                )
            return page
        user_id = here.user_id if here is not None else None
    if user_id is not None:
        await logout_service.end_sessions(session=session, user_id=user_id)
    response: Response
    if asked.post_logout_redirect_uri is not None:
        location = authorize_service.redirect_with(
            asked.post_logout_redirect_uri, {"state": asked.state}
        )
        response = RedirectResponse(location, status_code=303, headers=pages.PAGE_HEADERS)
    else:
        response = pages.render("signed_out.html")
    if here is None or here.user_id == user_id:
        response.delete_cookie(settings.oauth_session_cookie, path="/oauth2")
    return response


@router.get("/logout", summary="End-session endpoint", response_class=Response, responses=_PAGES)
async def end_session(
    request: Request, session: SessionDep, settings: SettingsDep, issuer: IssuerDep
) -> Response:
    """Sign the person out everywhere: with a valid ``id_token_hint`` at once, otherwise after
    they confirm; then back to the client's registered ``post_logout_redirect_uri``."""
    params = _parameters(list(request.query_params.multi_items()))
    return await _end_session(request, session, settings, issuer, params)


@router.post(
    "/logout", summary="End-session endpoint, form-encoded", response_class=Response,
    responses=_PAGES,
)  # fmt: skip
async def end_session_by_post(
    request: Request, session: SessionDep, settings: SettingsDep, issuer: IssuerDep
) -> Response:
    """The same request sent as a form, and the confirmation's answer."""
    form = await request.form()
    params = _parameters(list(form.multi_items()))
    return await _end_session(request, session, settings, issuer, params)
