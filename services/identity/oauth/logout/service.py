"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): read the request, end every
provider session and refresh token of the person."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.ids import utcnow
from services.identity.oauth.clients import service as clients_service
from services.identity.oauth.clients.models import OAuthClient
from services.identity.oauth.signin import repository as signin_repository
from services.identity.oauth.tokens import repository as tokens_repository
from services.identity.oauth.tokens import service as tokens_service
from services.identity.oauth.tokens.service import Issuer

MAX_PARAMETER = 8192


class LogoutRequestInvalid(Exception):
    """The request names an unknown client, a bad hint or an unregistered return address."""


@dataclass(frozen=True)
class LogoutRequest:
    """What an end-session request asks."""

    client: OAuthClient | None
    # The person the ID token hint names: the client vouches that this person asked to leave.
    user_id: str | None
    post_logout_redirect_uri: str | None
    state: str | None


async def id_token_hint_claims(
    *, session: AsyncSession, issuer: Issuer, token: str
) -> dict[str, Any] | None:
    """The claims of an ID token this provider issued; an expired one still counts (the spec
    asks it), one issued longer ago than a refresh token lives does not."""
    claims = await tokens_service.decode_published(
        session=session,
        issuer=issuer,
        token=token,
        access=False,
        options={"verify_exp": False, "verify_aud": False, "require": ["sub", "aud", "iat"]},
    )
    if claims is None:
        return None
    oldest = utcnow() - timedelta(seconds=issuer.settings.oauth_refresh_token_ttl_s)
    if not isinstance(claims["iat"], int) or claims["iat"] < oldest.timestamp():
        return None
    return claims


def _audience(claims: Mapping[str, Any]) -> str | None:
    audience = claims.get("aud")
    if isinstance(audience, list):
        audience = claims.get("azp") if len(audience) != 1 else audience[0]
    return audience if isinstance(audience, str) else None


async def read_request(
    *, session: AsyncSession, issuer: Issuer, params: Mapping[str, str]
) -> LogoutRequest:
    """Check an end-session request: the hint, the client, the return address."""
    client_id = params.get("client_id") or None
    user_id = None
    hint = params.get("id_token_hint")
    if hint:
        claims = await id_token_hint_claims(session=session, issuer=issuer, token=hint)
        audience = _audience(claims) if claims is not None else None
        if claims is None or audience is None:
            raise LogoutRequestInvalid("id_token_hint is not an ID token this provider issued.")
        if client_id is not None and client_id != audience:
            raise LogoutRequestInvalid("client_id is not the ID token's audience.")
        client_id, user_id = audience, str(claims["sub"])
    client = None
    if client_id is not None:
        client = await clients_service.find_enabled_client(session=session, client_id=client_id)
        if client is None:
            raise LogoutRequestInvalid("The client is unknown or disabled.")
    uri = params.get("post_logout_redirect_uri") or None
    if uri is not None and (client is None or uri not in client.post_logout_redirect_uris):
        raise LogoutRequestInvalid("post_logout_redirect_uri is not registered for the client.")
    return LogoutRequest(
        client=client, user_id=user_id, post_logout_redirect_uri=uri, state=params.get("state")
    )


async def end_sessions(*, session: AsyncSession, user_id: str) -> int:
    """Sign a person out everywhere: every provider session and every refresh token (with
    every client) revoked, their live access tokens denied. How many sessions ended."""
    now = utcnow()
    ended = await signin_repository.revoke_sessions_of(session, user_id=user_id, now=now)
    live = await tokens_repository.revoke_tokens_of(session, user_id=user_id, now=now)
    await tokens_service.deny_access_tokens(session=session, tokens=list(live), reason="logout")
    return ended
