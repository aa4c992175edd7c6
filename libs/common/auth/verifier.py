"""Local verification of access tokens: PyJWT against the cached JWKS, a verified-token cache,
and a denylist of revoked token ids."""

from __future__ import annotations

import base64
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from jwt import PyJWK
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from libs.common.auth.exceptions import InvalidToken, TokenVerificationUnavailable
from libs.common.auth.jwks import ALLOWED_ALGORITHMS, JwksCache
from libs.common.auth.principal import Principal, Role
from libs.common.settings import PartSettings

# RFC 9068 §2.1: access tokens are typed "at+jwt"; an ID token (typ "JWT" or none) is refused.
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "jti", "client_id"]
# Far above a real token (about 1 KB); refuses junk before any parsing.
MAX_TOKEN_LENGTH = 8192
_KNOWN_ROLES = {role.value: role for role in Role}

MALFORMED = "The access token is malformed."
EXPIRED = "The access token has expired."
REVOKED = "The access token has been revoked."

# The first matching class wins, so subclasses come before their bases.
_REASONS: list[tuple[type[PyJWTError], str]] = [
    (ExpiredSignatureError, EXPIRED),
    (ImmatureSignatureError, "The access token is not valid yet."),
    (InvalidAudienceError, "The access token was not issued for this platform."),
    (InvalidIssuerError, "The access token was issued by another issuer."),
    (InvalidSignatureError, "The access token's signature does not verify."),
    (InvalidAlgorithmError, "The access token's signing algorithm is not accepted."),
    (InvalidKeyError, "The access token's signing key is not accepted."),
    (DecodeError, MALFORMED),
]


def _reason(exc: PyJWTError) -> str:
    if isinstance(exc, MissingRequiredClaimError):
        return f"The access token lacks the '{exc.claim}' claim."
    for cls, reason in _REASONS:
        if isinstance(exc, cls):
            return reason
    return "The access token is not valid."


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, only to choose the key; PyJWT verifies the same bytes afterwards."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise InvalidToken(MALFORMED)
    segment = token[: token.index(".")]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError):
        raise InvalidToken(MALFORMED) from None
    if not isinstance(header, dict):
        raise InvalidToken(MALFORMED)
    return header


def _assurance_level(value: object) -> int:
    """``acr`` as an int: "1".."3" (OIDC strings) or 1..3; absent means no person signed in."""
    if value is None:
        return 0
    if isinstance(value, str) and value in {"1", "2", "3"}:
        return int(value)
    if type(value) is int and 1 <= value <= 3:
        return value
    raise InvalidToken("The access token's 'acr' is not an assurance level.")


def _principal(claims: dict[str, Any]) -> Principal:
    """The principal a verified payload names; a claim of the wrong shape refuses the token."""
    client_id, org = claims["client_id"], claims.get("org")
    roles, scope = claims.get("roles", []), claims.get("scope", "")
    if not isinstance(client_id, str) or not (org is None or isinstance(org, str)):
        raise InvalidToken("The access token's 'client_id' or 'org' is not a string.")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidToken("The access token's 'roles' is not a list of names.")
    if not isinstance(scope, str):
        raise InvalidToken("The access token's 'scope' is not a string.")
    return Principal(
        sub=claims["sub"],
        client_id=client_id,
        org=org,
        # Roles this version does not know grant nothing here; they do not spoil the token.
        roles=frozenset(_KNOWN_ROLES[r] for r in roles if r in _KNOWN_ROLES),
        acr=_assurance_level(claims.get("acr")),
        scopes=frozenset(scope.split()),
        jti=claims["jti"],
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )


class TokenVerifier:
    """Verify access tokens locally: signature, issuer, audience, lifetime, type, revocation."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: JwksCache,
        leeway_s: float = 30.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.leeway_s = leeway_s
        self.cache_size = cache_size
        self._clock = clock
        self._jwt = jwt.PyJWT(
            options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True}
        )
        self._algorithms = sorted(ALLOWED_ALGORITHMS)
        # token -> (principal, kid, key, exp): a token seen before costs a lookup, not a signature.
        self._verified: OrderedDict[str, tuple[Principal, str, PyJWK, float]] = OrderedDict()
        # jti -> until (epoch seconds); entries are dropped once their token has expired anyway.
        self._denied: dict[str, float] = {}
        self._denied_purge_at = 1024

    @classmethod
    def from_settings(
        cls, settings: PartSettings, *, client: httpx.AsyncClient | None = None
    ) -> TokenVerifier:
        """A verifier for the part's issuer and audience, with its JWKS settings."""
        return cls(
            issuer=settings.issuer,
            audience=settings.audience,
            jwks=JwksCache(
                settings.auth_jwks_url,
                client=client,
                refetch_floor_s=settings.auth_jwks_refetch_floor_s,
                max_age_s=settings.auth_jwks_max_age_s,
                timeout_s=settings.auth_jwks_timeout_s,
            ),
            leeway_s=settings.auth_leeway_s,
            cache_size=settings.auth_verified_cache_size,
        )

    async def verify(self, token: str) -> Principal:
        """The principal ``token`` names, else InvalidToken or TokenVerificationUnavailable."""
        seen = self._verified.get(token)
        if seen is not None:
            principal, kid, key, expires = seen
            now = self._clock()
            if now >= expires + self.leeway_s:
                del self._verified[token]
                raise InvalidToken(EXPIRED)
            if self._denied and self._is_denied(principal.jti, now):
                raise InvalidToken(REVOKED)
            if self.jwks.cached(kid) is key:
                return principal
            # Its key left the JWKS (rotated out or withdrawn): verify from scratch.
            del self._verified[token]
        return await self._verify_signed(token)

    def deny(self, jti: str, until: datetime) -> None:
        """Refuse the token ``jti`` until ``until`` (its expiry), e.g. on a revocation event."""
        self._denied[jti] = until.timestamp()
        if len(self._denied) >= self._denied_purge_at:
            now = self._clock()
            self._denied = {j: t for j, t in self._denied.items() if t + self.leeway_s > now}
            self._denied_purge_at = max(1024, 2 * len(self._denied))

    def is_denied(self, jti: str) -> bool:
        """Whether ``jti`` is on the denylist now."""
        return self._is_denied(jti, self._clock())

    async def aclose(self) -> None:
        """Release the JWKS client."""
        await self.jwks.aclose()

    def _is_denied(self, jti: str, now: float) -> bool:
        until = self._denied.get(jti)
        if until is None:
            return False
        if now >= until + self.leeway_s:
            del self._denied[jti]
            return False
        return True

    async def _verify_signed(self, token: str) -> Principal:
        header = _unverified_header(token)
        # Cheap refusals first, so junk never makes us fetch the JWKS.
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidToken("The token is not an access token (its type must be 'at+jwt').")
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise InvalidToken("The access token's signing algorithm is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("The access token names no signing key.")
        key = await self.jwks.get(kid)
        if key is None:
            if not self.jwks.has_keys:
                raise TokenVerificationUnavailable(self.jwks.retry_after_s() or 1.0)
            raise InvalidToken("The access token's signing key is unknown.")
        try:
            # The PyJWK binds its own algorithm: a header naming another one is refused.
            decoded = self._jwt.decode_complete(
                token,
                key,
                algorithms=self._algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
            )
        except PyJWTError as exc:
            raise InvalidToken(_reason(exc)) from None
        principal = _principal(decoded["payload"])
        if self._denied and self._is_denied(principal.jti, self._clock()):
            raise InvalidToken(REVOKED)
        if self.cache_size:
            if len(self._verified) >= self.cache_size:
                self._verified.popitem(last=False)
            self._verified[token] = (principal, kid, key, float(decoded["payload"]["exp"]))
        return principal
