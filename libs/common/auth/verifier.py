"""Local verification of access tokens: PyJWT against the cached JWKS, a verified-token cache,
and a denylist of revoked token ids."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256
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

# PyJWT refuses RSA keys below this with enforce_minimum_key_length; the fast path declines them.
MIN_RSA_BITS = 2048

MALFORMED = "The access token is malformed."
BAD_SIGNATURE = "The access token's signature does not verify."
EXPIRED = "The access token has expired."
REVOKED = "The access token has been revoked."

# The first matching class wins, so subclasses come before their bases.
_REASONS: list[tuple[type[PyJWTError], str]] = [
    (ExpiredSignatureError, EXPIRED),
    (ImmatureSignatureError, "The access token is not valid yet."),
    (InvalidAudienceError, "The access token was not issued for this platform."),
    (InvalidIssuerError, "The access token was issued by another issuer."),
    (InvalidSignatureError, BAD_SIGNATURE),
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


# Three unpadded base64url segments (the alphabet only: no "=", no whitespace, ASCII).
_COMPACT_JWS = re.compile(r"([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)", re.ASCII)
# The last character of a segment whose length is 2 or 3 modulo 4 has unused low bits; PyJWT
# re-encodes and compares, refusing other spellings of the same bytes, so only these end one.
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
_ECDSA_SHA256 = ec.ECDSA(SHA256())
_PKCS1V15 = padding.PKCS1v15()
_SHA256 = SHA256()


class _Decline(Exception):
    """The fast path does not decide this token; PyJWT does (and gives the reason)."""


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _fast_decode(
    token: str,
    key: PyJWK,
    *,
    issuer: str,
    audience: str,
    leeway: float,
    now: float,
) -> dict[str, Any]:
    """The payload of ``token`` verified with ``key``: the same checks as PyJWT's
    ``decode_complete`` with our options, over ``cryptography`` directly.

    Raises InvalidToken(BAD_SIGNATURE) when the signature does not verify (PyJWT would say the
    same for such a token), and _Decline for anything else it does not accept — padding,
    non-canonical base64url, ``crit``/``b64`` headers, a key it does not handle, any failing
    claim — so that PyJWT gives the verdict and the reason: the fast path only ever accepts
    what PyJWT accepts.
    """
    match = _COMPACT_JWS.fullmatch(token)
    if match is None:
        raise _Decline
    header_b64, payload_b64, signature_b64 = segments = match.groups()
    for segment in segments:
        tail = len(segment) % 4
        if tail == 1 or (tail and segment[-1] not in _CANONICAL_LAST[tail]):
            raise _Decline
    try:
        header = json.loads(_b64decode(header_b64))
        signature = _b64decode(signature_b64)
        payload_bytes = _b64decode(payload_b64)
    except (ValueError, RecursionError, binascii.Error):
        raise _Decline from None
    if not isinstance(header, dict) or "crit" in header or "b64" in header:
        raise _Decline
    alg = header.get("alg")
    kid = header.get("kid")
    typ = header.get("typ")
    if (
        alg not in ALLOWED_ALGORITHMS
        or alg != key.algorithm_name
        or not isinstance(kid, str)
        or not kid
        or not isinstance(typ, str)
        or typ.lower() not in ACCESS_TOKEN_TYPES
    ):
        raise _Decline
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    public = key.key
    if alg == "ES256":
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
            public.curve, ec.SECP256R1
        ):
            raise _Decline
        if len(signature) != 64:
            raise InvalidToken(BAD_SIGNATURE)
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            public.verify(der, signing_input, _ECDSA_SHA256)
        except InvalidSignature:
            raise InvalidToken(BAD_SIGNATURE) from None
    elif alg == "RS256":
        if not isinstance(public, rsa.RSAPublicKey) or public.key_size < MIN_RSA_BITS:
            raise _Decline
        try:
            public.verify(signature, signing_input, _PKCS1V15, _SHA256)
        except InvalidSignature:
            raise InvalidToken(BAD_SIGNATURE) from None
    else:  # pragma: no cover - ALLOWED_ALGORITHMS holds only these two
        raise _Decline
    try:
        payload = json.loads(payload_bytes)
    except (ValueError, RecursionError):
        raise _Decline from None
    if not isinstance(payload, dict):
        raise _Decline
    _check_claims(payload, issuer=issuer, audience=audience, leeway=leeway, now=now)
    return payload


def _check_claims(
    payload: dict[str, Any], *, issuer: str, audience: str, leeway: float, now: float
) -> None:
    """PyJWT's claim checks with our options (every verify_* on, ``require`` REQUIRED_CLAIMS,
    one issuer and one audience, not strict), in its order; any failure declines."""
    for claim in REQUIRED_CLAIMS:
        if payload.get(claim) is None:
            raise _Decline
    try:
        # PyJWT coerces with int(), so "123", 1.5 and True pass its checks too.
        iat = int(payload["iat"])
        nbf = int(payload["nbf"]) if "nbf" in payload else None
        exp = int(payload["exp"])
    except (ValueError, TypeError, OverflowError):
        raise _Decline from None
    if iat > now + leeway or (nbf is not None and nbf > now + leeway) or exp <= now - leeway:
        raise _Decline
    if payload["iss"] != issuer or not isinstance(payload["iss"], str):
        raise _Decline
    audiences = payload["aud"]
    if not audiences:
        raise _Decline
    if isinstance(audiences, str):
        audiences = [audiences]
    if (
        not isinstance(audiences, list)
        or any(not isinstance(a, str) for a in audiences)
        or audience not in audiences
    ):
        raise _Decline
    if not isinstance(payload["sub"], str) or not isinstance(payload["jti"], str):
        raise _Decline


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
    # PyJWT compares int(exp), so it lets "1795000000" through; a time must be a number.
    if type(claims["exp"]) not in (int, float):
        raise InvalidToken("The access token's 'exp' is not a number.")
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
        fast_path: bool = True,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.leeway_s = leeway_s
        self.cache_size = cache_size
        self._clock = clock
        # Verify with cryptography directly when the token is in the fast path's strict
        # profile; PyJWT decides every other token (and gives every refusal's reason).
        self.fast_path = fast_path
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
        payload = self.decode(token, key)
        principal = _principal(payload)
        if self._denied and self._is_denied(principal.jti, self._clock()):
            raise InvalidToken(REVOKED)
        if self.cache_size:
            if len(self._verified) >= self.cache_size:
                self._verified.popitem(last=False)
            self._verified[token] = (principal, kid, key, float(payload["exp"]))
        return principal

    def decode(self, token: str, key: PyJWK) -> dict[str, Any]:
        """The verified payload of ``token`` signed with ``key``, else InvalidToken."""
        if self.fast_path:
            try:
                # PyJWT compares claims with the wall clock (not self._clock); so do we.
                return _fast_decode(
                    token,
                    key,
                    issuer=self.issuer,
                    audience=self.audience,
                    leeway=self.leeway_s,
                    now=time.time(),
                )
            except _Decline:
                pass
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
        payload: dict[str, Any] = decoded["payload"]
        return payload
