"""The portal as a confidential OpenID Connect client of identity (authorization code + PKCE).

httpx speaks to identity's endpoints; PyJWT verifies the ID token against identity's JWKS (the
same cache libs.common.auth keeps for access tokens). PKCE S256 is RFC 7636 §4.2.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from libs.common.auth.jwks import JwksCache
from portal.settings import PortalSettings

ID_TOKEN_ALGORITHMS = ["RS256", "ES256"]


class SignInFailed(Exception):
    """Identity refused or the answer could not be trusted; the reason is for the log only."""


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint answered."""

    access_token: str
    refresh_token: str | None
    expires_in: int
    id_token: str | None


def new_verifier() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


class OidcClient:
    """identity's endpoints, as the portal's client sees them."""

    def __init__(self, settings: PortalSettings, http: httpx.AsyncClient, jwks: JwksCache) -> None:
        self.settings = settings
        self.http = http
        self.jwks = jwks
        self._auth = httpx.BasicAuth(settings.client_id, settings.client_secret)

    def authorization_url(
        self, *, state: str, nonce: str, challenge: str, prompt: str | None = None
    ) -> str:
        """Where the browser goes to sign in (identity, through the public URL)."""
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.settings.redirect_uri,
            "scope": self.settings.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if prompt:
            params["prompt"] = prompt
        return f"{self.settings.public_url}/oauth2/authorize?{urlencode(params)}"

    def end_session_url(self, *, id_token_hint: str) -> str:
        """identity's end-session endpoint (RP-initiated logout), back to the portal after."""
        params = {
            "id_token_hint": id_token_hint,
            "client_id": self.settings.client_id,
            "post_logout_redirect_uri": self.settings.post_logout_redirect_uri,
        }
        return f"{self.settings.public_url}/oauth2/logout?{urlencode(params)}"

    async def _token(self, data: dict[str, str]) -> TokenSet:
        try:
            answer = await self.http.post(
                f"{self.settings.api_url}/oauth2/token", data=data, auth=self._auth
            )
        except httpx.HTTPError as exc:
            raise SignInFailed(f"token endpoint unreachable: {exc!r}") from exc
        if answer.status_code != 200:
            raise SignInFailed(f"token endpoint answered {answer.status_code}: {answer.text[:200]}")
        body: dict[str, Any] = answer.json()
        return TokenSet(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token"),
            expires_in=int(body.get("expires_in", 300)),
            id_token=body.get("id_token"),
        )

    async def exchange_code(self, *, code: str, verifier: str) -> TokenSet:
        """Trade the authorization code (and the PKCE verifier) for tokens."""
        return await self._token({
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": self.settings.redirect_uri, "code_verifier": verifier,
        })  # fmt: skip

    async def refresh(self, refresh_token: str) -> TokenSet:
        """New tokens for a refresh token (identity rotates it)."""
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    async def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token and its family at identity (RFC 7009); errors are ignored."""
        try:
            await self.http.post(
                f"{self.settings.api_url}/oauth2/revoke",
                data={"token": refresh_token, "token_type_hint": "refresh_token"},
                auth=self._auth,
            )
        except httpx.HTTPError:
            pass  # the session is dropped anyway; the token dies at its expiry

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """The person's claims (name, ...)."""
        answer = await self.http.get(
            f"{self.settings.api_url}/oauth2/userinfo",
            headers={"Authorization": f"Bearer {access_token}"},
        )
        if answer.status_code != 200:
            raise SignInFailed(f"userinfo answered {answer.status_code}")
        claims: dict[str, Any] = answer.json()
        return claims

    async def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The ID token's claims: signature, issuer, audience, lifetime and nonce checked."""
        try:
            kid = jwt.get_unverified_header(id_token).get("kid")
            key = await self.jwks.get(str(kid)) if kid else None
            if key is None:
                raise SignInFailed("ID token signed with an unknown key")
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key.key,
                algorithms=ID_TOKEN_ALGORITHMS,
                audience=self.settings.client_id,
                issuer=self.settings.issuer,
                leeway=self.settings.auth_leeway_s,
                options={"require": ["iss", "aud", "exp", "iat", "sub", "nonce"]},
            )
        except jwt.PyJWTError as exc:
            raise SignInFailed(f"ID token refused: {exc}") from exc
        if not secrets.compare_digest(str(claims["nonce"]), nonce):
            raise SignInFailed("ID token nonce differs")
        return claims
