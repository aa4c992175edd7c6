"""``/oauth2/token``, ``/oauth2/revoke``, ``/oauth2/introspect``, ``/oauth2/userinfo``.

They speak OAuth: errors are ``{"error", "error_description"}`` JSON (RFC 6749 §5.2), and an
error that revokes something still commits (the endpoint returns the error; it does not raise).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import token_verifier
from libs.common.database import SessionDep
from services.identity.oauth.clients import service as clients_service
from services.identity.oauth.clients.exceptions import ClientAuthenticationFailed
from services.identity.oauth.clients.models import OAuthClient
from services.identity.oauth.dependencies import IssuerDep, SettingsDep, unit_of_work
from services.identity.oauth.errors import (
    NO_STORE,
    OAuthError,
    invalid_client,
    invalid_request,
    oauth_error_response,
)
from services.identity.oauth.tokens import service as tokens_service
from services.identity.oauth.tokens.service import Issuer
from services.identity.settings import IdentitySettings

router = APIRouter(prefix="/oauth2", tags=["OpenID Connect"])

MAX_FIELD = 4096
MAX_FIELDS = 32
OAUTH_ERROR = {
    "description": "An OAuth error (RFC 6749 §5.2)",
    "content": {
        "application/json": {
            "example": {"error": "invalid_grant", "error_description": "The code has expired."}
        }
    },
}
FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}},
        "required": True,
    }
}


async def _form(request: Request) -> dict[str, str]:
    """The form parameters; each at most once, as RFC 6749 §3.2 asks."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise invalid_request("Send the parameters as application/x-www-form-urlencoded.")
    # Parsed here rather than by Starlette's multipart parser, which costs far more per request
    # than the few short fields a token request has. The body is bounded by the middleware.
    try:
        pairs = parse_qsl(
            (await request.body()).decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise invalid_request("The form is not valid application/x-www-form-urlencoded.") from None
    fields: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            raise invalid_request(f"The parameter {name} is repeated.")
        if len(value) > MAX_FIELD:
            raise invalid_request(f"The parameter {name} is too long.")
        seen.add(name)
        if value != "":
            fields[name] = value
    return fields


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise invalid_client()
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client() from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise invalid_client()
    # RFC 6749 §2.3.1: both are form-urlencoded before the Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


async def _authenticate(
    request: Request, session: AsyncSession, settings: IdentitySettings, form: dict[str, str]
) -> OAuthClient:
    """The client the request authenticates as: Basic, a secret in the body, or a public id."""
    basic = _basic_credentials(request)
    if basic is not None:
        if "client_secret" in form:
            raise invalid_request("Use one client authentication method, not two.")
        if form.get("client_id", basic[0]) != basic[0]:
            raise invalid_client()
        client_id, secret = basic
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret")  # type: ignore[assignment]
    if not client_id or len(client_id) > 64:
        raise invalid_client()
    try:
        return await clients_service.authenticate_client(
            session=session,
            secret_key=settings.secret_key,
            client_id=client_id,
            client_secret=secret,
        )
    except ClientAuthenticationFailed:
        raise invalid_client() from None


@router.post(
    "/token",
    summary="Token endpoint",
    response_class=JSONResponse,
    responses={400: OAUTH_ERROR, 401: OAUTH_ERROR},
    openapi_extra=FORM_BODY,
)
async def token(request: Request) -> Response:
    """authorization_code (PKCE), refresh_token (rotation), client_credentials."""
    # The busiest endpoint takes nothing through dependencies: each one costs FastAPI's
    # machinery per request, and a client-credentials grant runs no SQL at all.
    settings: IdentitySettings = request.app.state.settings
    issuer: Issuer = request.app.state.oauth_issuer
    async with unit_of_work(request) as session:
        try:
            issued = await _grant(request, session, settings, issuer)
        except OAuthError as exc:
            # Returned, not raised: what a refused grant revoked (a reused token's family)
            # still commits.
            return oauth_error_response(exc)
    return JSONResponse(issued.body(), headers=NO_STORE)


async def _grant(
    request: Request, session: AsyncSession, settings: IdentitySettings, issuer: Issuer
) -> tokens_service.TokenResponse:
    form = await _form(request)
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise invalid_request("grant_type is required.")
    if grant_type not in ("authorization_code", "refresh_token", "client_credentials"):
        raise OAuthError("unsupported_grant_type", f"grant_type {grant_type} is not supported.")
    client = await _authenticate(request, session, settings, form)
    if grant_type == "authorization_code":
        if "code" not in form:
            raise invalid_request("code is required.")
        return await tokens_service.exchange_code(
            session=session,
            issuer=issuer,
            client=client,
            code=form["code"],
            redirect_uri=form.get("redirect_uri"),
            code_verifier=form.get("code_verifier"),
        )
    if grant_type == "refresh_token":
        if "refresh_token" not in form:
            raise invalid_request("refresh_token is required.")
        return await tokens_service.refresh(
            session=session,
            issuer=issuer,
            client=client,
            refresh_token=form["refresh_token"],
            scope=form.get("scope"),
        )
    return await tokens_service.client_credentials(
        session=session, issuer=issuer, client=client, scope=form.get("scope")
    )


@router.post(
    "/revoke",
    summary="Revocation endpoint (RFC 7009)",
    responses={400: OAUTH_ERROR, 401: OAUTH_ERROR},
    openapi_extra=FORM_BODY,
)
async def revoke(
    request: Request, session: SessionDep, settings: SettingsDep, issuer: IssuerDep
) -> Response:
    """Revoke a refresh token (with its family) or an access token; 200 whatever it was."""
    try:
        form = await _form(request)
        client = await _authenticate(request, session, settings, form)
        if "token" not in form:
            raise invalid_request("token is required.")
        denied = await tokens_service.revoke(
            session=session,
            issuer=issuer,
            client=client,
            token=form["token"],
            hint=form.get("token_type_hint"),
        )
    except OAuthError as exc:
        return oauth_error_response(exc)
    # This process's own verifier refuses them at once; other parts learn it from the event.
    verifier = token_verifier(request.app)
    for jti, until in denied:
        verifier.deny(jti, until)
    return Response(status_code=200, headers=NO_STORE)


@router.post(
    "/introspect",
    summary="Introspection endpoint (RFC 7662)",
    responses={400: OAUTH_ERROR, 401: OAUTH_ERROR},
    openapi_extra=FORM_BODY,
)
async def introspect(
    request: Request, session: SessionDep, settings: SettingsDep, issuer: IssuerDep
) -> Response:
    """Whether a token is active, and what it says; confidential clients only."""
    try:
        form = await _form(request)
        client = await _authenticate(request, session, settings, form)
        if client.client_type != "confidential":
            raise invalid_client()
        if "token" not in form:
            raise invalid_request("token is required.")
        body = await tokens_service.introspect(
            session=session,
            issuer=issuer,
            client=client,
            token=form["token"],
            hint=form.get("token_type_hint"),
        )
    except OAuthError as exc:
        return oauth_error_response(exc)
    return JSONResponse(body, headers=NO_STORE)


def _bearer(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise OAuthError(
            "invalid_request",
            "Send the access token as 'Authorization: Bearer <token>'.",
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="pingtai"'},
        )
    return value.strip()


# OpenID Connect Core 5.3.1: GET and POST both; one operation id each, so the document has no
# duplicate (FastAPI would name both methods of one `api_route` alike).
@router.get(
    "/userinfo",
    operation_id="userinfo_get",
    summary="UserInfo endpoint (OpenID Connect)",
    responses={401: OAUTH_ERROR, 403: OAUTH_ERROR},
)
@router.post(
    "/userinfo",
    operation_id="userinfo_post",
    summary="UserInfo endpoint (OpenID Connect), form-encoded access",
    responses={401: OAUTH_ERROR, 403: OAUTH_ERROR},
)
async def userinfo(request: Request, session: SessionDep, issuer: IssuerDep) -> Response:
    """The signed-in person's claims, as the token's scopes release them."""
    try:
        claims = await tokens_service.userinfo(
            session=session, issuer=issuer, token=_bearer(request)
        )
    except OAuthError as exc:
        return oauth_error_response(exc)
    return JSONResponse(claims, headers=NO_STORE)
