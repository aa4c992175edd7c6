"""``/oauth2/authorize``: the request, the sign-in form, the organisation choice, the code."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.database import SessionDep
from libs.common.errors import problem_response
from services.identity.ids import utcnow
from services.identity.oauth import pages
from services.identity.oauth.authorize import service as authorize_service
from services.identity.oauth.authorize.service import (
    AuthorizationRequest,
    AuthorizeError,
    FormStateInvalid,
)
from services.identity.oauth.clients import service as clients_service
from services.identity.oauth.clients.models import OAuthClient
from services.identity.oauth.dependencies import SettingsDep, client_address
from services.identity.oauth.derived_keys import new_opaque_token
from services.identity.oauth.signin import service as signin_service
from services.identity.oauth.signin.models import IdpSession
from services.identity.oauth.tokens import service as tokens_service
from services.identity.people import repository as people_repository
from services.identity.settings import IdentitySettings

router = APIRouter(prefix="/oauth2", tags=["OpenID Connect"], include_in_schema=True)

# A random value per browser that the forms' CSRF tokens are bound to.
BROWSER_COOKIE = "pingtai_idp_browser"
SIGNIN_ACTION = "/oauth2/authorize/signin"
ORGANISATION_ACTION = "/oauth2/authorize/organisation"
MAX_FORM_FIELD = 8192


def _secure_cookies(settings: IdentitySettings) -> bool:
    return settings.env == "production" or settings.issuer.startswith("https://")


def set_cookie(
    response: Response, settings: IdentitySettings, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/oauth2",
        secure=_secure_cookies(settings),
        httponly=True,
        samesite="lax",
    )


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "json" in accept and "text/html" not in accept


def _refuse(request: Request, error: str, description: str) -> Response:
    """No redirect is safe: tell the person (a page) or the program (a problem document)."""
    if _wants_json(request):
        return problem_response(400, code=error.replace("_", "-"), detail=description)
    return pages.error_page(error, detail=description)


def _error_redirect(
    settings: IdentitySettings, redirect_uri: str, state: str | None, error: str, description: str
) -> Response:
    location = authorize_service.redirect_with(
        redirect_uri,
        {
            "error": error,
            "error_description": description,
            "state": state,
            "iss": settings.issuer,
        },
    )
    return RedirectResponse(location, status_code=302, headers=pages.PAGE_HEADERS)


def browser_token(request: Request) -> tuple[str, bool]:
    token = request.cookies.get(BROWSER_COOKIE)
    if token and 20 <= len(token) <= 128:
        return token, False
    return new_opaque_token(), True


def _signin_page(
    request: Request,
    settings: IdentitySettings,
    client: OAuthClient,
    auth: AuthorizationRequest,
    *,
    form_state: str | None = None,
    csrf: str | None = None,
    error: bool = False,
    username: str = "",
) -> Response:
    browser, new = browser_token(request)
    if form_state is None or csrf is None:
        form_state = authorize_service.sign_form_state(
            secret_key=settings.secret_key,
            browser_token=browser,
            request=auth,
            ttl_s=settings.oauth_sign_in_form_ttl_s,
            stage="signin",
        )
        csrf = authorize_service.csrf_token(secret_key=settings.secret_key, browser_token=browser)
    response = pages.render(
        "signin.html",
        client_name=client.name,
        action=SIGNIN_ACTION,
        auth_request=form_state,
        csrf_token=csrf,
        error=error,
        username=username,
    )
    if new:
        set_cookie(response, settings, BROWSER_COOKIE, browser, settings.oauth_sign_in_form_ttl_s)
    return response


async def _issue_code(
    *,
    session: AsyncSession,
    settings: IdentitySettings,
    auth: AuthorizationRequest,
    idp: IdpSession,
    org_id: str | None,
    status: int,
) -> Response:
    code = await tokens_service.create_authorization_code(
        session=session,
        settings=settings,
        client_id=auth.client_id,
        user_id=idp.user_id,
        org_id=org_id,
        redirect_uri=auth.redirect_uri,
        scope=auth.scope,
        nonce=auth.nonce,
        code_challenge=auth.code_challenge,
        session_id=idp.id,
        auth_time=signin_service.auth_time_of(idp),
        amr=idp.amr,
    )
    location = authorize_service.redirect_with(
        auth.redirect_uri, {"code": code, "state": auth.state, "iss": settings.issuer}
    )
    return RedirectResponse(location, status_code=status, headers=pages.PAGE_HEADERS)


async def _continue(
    *,
    request: Request,
    session: AsyncSession,
    settings: IdentitySettings,
    auth: AuthorizationRequest,
    idp: IdpSession,
    status: int,
) -> Response:
    """Signed in: choose the organisation when there is a choice, else issue the code."""
    organisations = await authorize_service.organisations_of(session=session, user_id=idp.user_id)
    choose = len(organisations) > 1 or ("select_account" in auth.prompt and organisations)
    if not choose:
        org_id = organisations[0].id if organisations else None
        return await _issue_code(
            session=session, settings=settings, auth=auth, idp=idp, org_id=org_id, status=status
        )
    if "none" in auth.prompt:
        return _error_redirect(
            settings,
            auth.redirect_uri,
            auth.state,
            "interaction_required",
            "The person must choose the organisation they act for.",
        )
    browser, new = browser_token(request)
    form_state = authorize_service.sign_form_state(
        secret_key=settings.secret_key,
        browser_token=browser,
        request=auth,
        ttl_s=settings.oauth_sign_in_form_ttl_s,
        stage="organisation",
        extra={"sub": idp.user_id, "sid": idp.id},
    )
    person = await people_repository.get(session, user_id=idp.user_id)
    response = pages.render(
        "choose_org.html",
        action=ORGANISATION_ACTION,
        auth_request=form_state,
        csrf_token=authorize_service.csrf_token(
            secret_key=settings.secret_key, browser_token=browser
        ),
        organisations=organisations,
        person_name=person.name if person is not None else "",
    )
    if new:
        set_cookie(response, settings, BROWSER_COOKIE, browser, settings.oauth_sign_in_form_ttl_s)
    return response


async def _authorize(
    request: Request,
    session: AsyncSession,
    settings: IdentitySettings,
    params: dict[str, list[str]],
) -> Response:
    client_ids = params.get("client_id", [])
    client = None
    if len(client_ids) == 1 and 0 < len(client_ids[0]) <= 64:
        client = await clients_service.find_enabled_client(session=session, client_id=client_ids[0])
    try:
        client, redirect_uri = authorize_service.check_client_and_redirect(client, params)
    except AuthorizeError as exc:
        return _refuse(request, exc.error, exc.description)
    states = params.get("state", [])
    state = states[0] if len(states) == 1 and len(states[0]) <= 2048 else None
    try:
        auth = authorize_service.check_request(
            client, redirect_uri, params, allowed=set(client.scopes)
        )
    except AuthorizeError as exc:
        return _error_redirect(settings, redirect_uri, state, exc.error, exc.description)
    idp = None
    if "login" not in auth.prompt:
        idp = await signin_service.find_session(
            session=session, token=request.cookies.get(settings.oauth_session_cookie)
        )
    if idp is not None and auth.max_age is not None:
        age = (utcnow() - signin_service.auth_time_of(idp)).total_seconds()
        if age > auth.max_age:
            idp = None
    if idp is None:
        if "none" in auth.prompt:
            return _error_redirect(
                settings, redirect_uri, auth.state, "login_required", "The person is not signed in."
            )
        return _signin_page(request, settings, client, auth)
    return await _continue(
        request=request, session=session, settings=settings, auth=auth, idp=idp, status=302
    )


def _multi(items: Any) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in items:
        if isinstance(value, str):
            params.setdefault(key, []).append(value)
    return params


# The authorisation endpoints answer a request they cannot send back to its client with an HTML
# error page for the person in front of the browser (RFC 6749 4.1.2.1), not a problem document.
_ERROR_PAGE: dict[int | str, dict[str, object]] = {
    400: {"content": {"text/html": {}}, "description": "The authorisation error page"}
}


@router.get(
    "/authorize",
    summary="Authorization endpoint (code + PKCE S256)",
    response_class=Response,
    responses={
        200: {"content": {"text/html": {}}},
        302: {"description": "Back to the client"},
        **_ERROR_PAGE,
    },
)
async def authorize(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Start a sign-in: check the request, then show the form, the choice, or redirect."""
    return await _authorize(request, session, settings, _multi(request.query_params.multi_items()))


@router.post(
    "/authorize",
    summary="Authorization endpoint, form-encoded",
    response_class=Response,
    responses=_ERROR_PAGE,
)
async def authorize_by_post(
    request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """The same request sent as a form (OIDC Core §3.1.2.1)."""
    form = await request.form()
    return await _authorize(request, session, settings, _multi(form.multi_items()))


async def _form_fields(request: Request, *names: str) -> dict[str, str] | None:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    form = await request.form()
    fields = {}
    for name in names:
        values = form.getlist(name)
        value = values[0] if len(values) == 1 else ""
        if not isinstance(value, str) or len(value) > MAX_FORM_FIELD:
            return None
        fields[name] = value
    return fields


async def _read_form(
    request: Request, session: AsyncSession, settings: IdentitySettings, stage: str, *names: str
) -> tuple[AuthorizationRequest, dict[str, Any], dict[str, str], OAuthClient] | Response:
    fields = await _form_fields(request, "auth_request", "csrf_token", *names)
    if fields is None:
        return _refuse(request, "invalid_request", "The form is incomplete.")
    try:
        auth, claims = authorize_service.read_form_state(
            secret_key=settings.secret_key,
            browser_token=request.cookies.get(BROWSER_COOKIE),
            state=fields["auth_request"],
            csrf=fields["csrf_token"],
            stage=stage,
        )
    except FormStateInvalid:
        return pages.error_page("form_expired", status=400)
    client = await clients_service.find_enabled_client(session=session, client_id=auth.client_id)
    if client is None or auth.redirect_uri not in client.redirect_uris:
        return _refuse(request, "invalid_client", "The client is unknown or disabled.")
    return auth, claims, fields, client


@router.post(
    "/authorize/signin", summary="The sign-in form", response_class=Response, responses=_ERROR_PAGE
)
async def submit_sign_in(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Check the credentials; on success start the provider session and go on."""
    read = await _read_form(request, session, settings, "signin", "username", "password")
    if isinstance(read, Response):
        return read
    auth, _, fields, client = read
    user = await signin_service.sign_in(
        session=session,
        protector=request.app.state.protector,
        settings=settings,
        login=fields["username"][:254],
        password=fields["password"][:1024],
        ip=client_address(request),
        client_id=client.client_id,
    )
    if user is None:
        # The same page for every refusal: the submitted form state is reused as it was.
        return _signin_page(
            request,
            settings,
            client,
            auth,
            form_state=fields["auth_request"],
            csrf=fields["csrf_token"],
            error=True,
            username=fields["username"][:254],
        )
    idp, token = await signin_service.start_session(
        session=session, settings=settings, user=user, amr=signin_service.PASSWORD_AMR
    )
    response = await _continue(
        request=request, session=session, settings=settings, auth=auth, idp=idp, status=303
    )
    set_cookie(
        response, settings, settings.oauth_session_cookie, token, settings.oauth_session_ttl_s
    )
    return response


@router.post(
    "/authorize/organisation",
    summary="The organisation choice",
    response_class=Response,
    responses=_ERROR_PAGE,
)
async def choose_organisation(
    request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """Issue the code for the organisation chosen (or none: as a citizen)."""
    read = await _read_form(request, session, settings, "organisation", "org")
    if isinstance(read, Response):
        return read
    auth, claims, fields, _ = read
    idp = await signin_service.find_session(
        session=session, token=request.cookies.get(settings.oauth_session_cookie)
    )
    if idp is None or idp.id != claims.get("sid") or idp.user_id != claims.get("sub"):
        return pages.error_page("form_expired", status=400)
    organisations = await authorize_service.organisations_of(session=session, user_id=idp.user_id)
    chosen = fields["org"] or None
    if chosen is not None and chosen not in {o.id for o in organisations}:
        return _refuse(request, "invalid_request", "You do not belong to that organisation.")
    return await _issue_code(
        session=session, settings=settings, auth=auth, idp=idp, org_id=chosen, status=303
    )
