"""``/.well-known/openid-configuration`` and ``/.well-known/jwks.json``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from libs.common.database import SessionDep
from services.identity.oauth.clients.service import USER_SCOPES
from services.identity.oauth.dependencies import IssuerDep, SettingsDep
from services.identity.settings import IdentitySettings

router = APIRouter(prefix="/.well-known", tags=["OpenID Connect"])


def openid_configuration(settings: IdentitySettings) -> dict[str, Any]:
    """The provider metadata (OpenID Connect Discovery 1.0, RFC 8414); endpoints under the
    issuer, which is the gateway's public URL."""
    base = settings.issuer
    auth_methods = ["client_secret_basic", "client_secret_post"]
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth2/authorize",
        "token_endpoint": f"{base}/oauth2/token",
        "userinfo_endpoint": f"{base}/oauth2/userinfo",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "revocation_endpoint": f"{base}/oauth2/revoke",
        "introspection_endpoint": f"{base}/oauth2/introspect",
        "end_session_endpoint": f"{base}/oauth2/logout",
        "scopes_supported": USER_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": sorted({settings.oauth_id_token_alg, "RS256"}),
        "token_endpoint_auth_methods_supported": [*auth_methods, "none"],
        "revocation_endpoint_auth_methods_supported": [*auth_methods, "none"],
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "acr_values_supported": ["1", "2", "3"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "at_hash",
            "azp",
            "name",
            "email",
            "phone_number",
            "updated_at",
            "org",
            "roles",
        ],  # fmt: skip
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,
        "ui_locales_supported": ["zh-CN", "en"],
    }


@router.get("/openid-configuration", summary="OpenID provider metadata")
async def discovery(settings: SettingsDep) -> JSONResponse:
    """Where the provider's endpoints are and what it supports."""
    return JSONResponse(
        openid_configuration(settings), headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/jwks.json", summary="The signing keys (JWKS)")
async def jwks(issuer: IssuerDep, session: SessionDep) -> JSONResponse:
    """Every published signing key: the active ones, the next ones, those still retiring."""
    return JSONResponse(
        await issuer.ring.jwks(session=session), headers={"Cache-Control": "public, max-age=60"}
    )
