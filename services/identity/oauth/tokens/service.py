"""The token rules: codes, grants, signed access and ID tokens, refresh rotation, revocation,
introspection and userinfo. No HTTP here; OAuthError carries the protocol's error codes."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import jwt
from jwt.exceptions import PyJWTError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import new_event, outbox
from services.identity.ids import new_id, utcnow
from services.identity.oauth.clients.models import OAuthClient
from services.identity.oauth.derived_keys import b64url, new_opaque_token, token_digest
from services.identity.oauth.errors import OAuthError, invalid_grant, invalid_request
from services.identity.oauth.keys.service import KeyRing, LoadedKey
from services.identity.oauth.settings import OAuthSettings
from services.identity.oauth.tokens import repository as tokens_repository
from services.identity.oauth.tokens.events import AccessTokensRevoked, RefreshTokenReused
from services.identity.oauth.tokens.models import AuthorizationCode
from services.identity.organisations import repository as organisations_repository
from services.identity.people import repository as people_repository

ACCESS_TOKEN_TYPE = "at+jwt"
# Scopes whose claims userinfo and the ID token release.
CLAIM_SCOPES = frozenset({"openid", "profile", "phone", "email", "pingtai"})


@dataclass(frozen=True, slots=True)
class Issuer:
    """What signing needs: the key ring, the settings, the issuer and audience names."""

    ring: KeyRing
    settings: OAuthSettings
    issuer: str
    audience: str


@dataclass(frozen=True, slots=True)
class PersonGrant:
    """What a person's token says about them for one organisation (or none)."""

    user_id: str
    acr: int
    roles: list[str]
    org_id: str | None


@dataclass(slots=True)
class TokenResponse:
    """The body of a successful token response (RFC 6749 §5.1)."""

    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    id_token: str | None = None
    # Who the access token names and until when: a denylist needs them if it is revoked.
    jti: str = ""
    expires_at: datetime = field(default_factory=utcnow)

    def body(self) -> dict[str, Any]:
        """The JSON the token endpoint returns."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token
        if self.id_token:
            body["id_token"] = self.id_token
        return body


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes; they were stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a code verifier (RFC 7636 §4.2)."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _half_hash(token: str) -> str:
    # OIDC Core §3.1.3.6: at_hash is the left half of the hash the signing algorithm uses
    # (SHA-256 for both RS256 and ES256).
    return b64url(hashlib.sha256(token.encode("ascii")).digest()[:16])


async def person_grant(
    *, session: AsyncSession, user_id: str, org_id: str | None
) -> PersonGrant | None:
    """The person's assurance level and roles, platform-wide plus in ``org_id``; None when the
    account is not active or no longer belongs to ``org_id``."""
    user = await people_repository.get(session, user_id=user_id)
    if user is None or user.status != "active":
        return None
    memberships = await organisations_repository.memberships_of_user(session, user_id=user_id)
    if org_id is not None and not any(m.org_id == org_id for m in memberships):
        return None
    roles = [m.role for m in memberships if m.org_id is None or m.org_id == org_id]
    return PersonGrant(
        user_id=user_id, acr=user.acr, roles=list(dict.fromkeys(roles)), org_id=org_id
    )


async def issue_access_token(
    issuer: Issuer,
    *,
    session: AsyncSession,
    sub: str,
    client_id: str,
    scope: str,
    org: str | None,
    roles: list[str],
    acr: int | None,
    auth_time: datetime | None = None,
) -> tuple[str, str, datetime]:
    """A signed RFC 9068 access token; returns it, its jti and its expiry."""
    key = await issuer.ring.signing_key(issuer.settings.oauth_access_token_alg, session=session)
    now = utcnow()
    expires_at = now + timedelta(seconds=issuer.settings.oauth_access_token_ttl_s)
    jti = new_id()
    claims: dict[str, Any] = {
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "sub": sub,
        "client_id": client_id,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": jti,
        "scope": scope,
        "roles": roles,
    }
    if org is not None:
        claims["org"] = org
    if acr is not None:
        claims["acr"] = str(acr)
    if auth_time is not None:
        claims["auth_time"] = int(auth_time.timestamp())
    token = jwt.encode(
        claims,
        key.private_key,
        algorithm=key.alg,
        headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE},
    )
    return token, jti, expires_at


async def issue_id_token(
    issuer: Issuer,
    *,
    session: AsyncSession,
    client_id: str,
    user_id: str,
    nonce: str | None,
    auth_time: datetime,
    acr: int,
    amr: list[str],
    access_token: str,
    extra_claims: dict[str, Any],
) -> str:
    """A signed OpenID Connect ID token for ``client_id``."""
    key = await issuer.ring.signing_key(issuer.settings.oauth_id_token_alg, session=session)
    now = utcnow()
    claims: dict[str, Any] = {
        **extra_claims,
        "iss": issuer.issuer,
        "sub": user_id,
        "aud": client_id,
        "azp": client_id,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + issuer.settings.oauth_id_token_ttl_s,
        "auth_time": int(auth_time.timestamp()),
        "acr": str(acr),
        "amr": amr,
        "at_hash": _half_hash(access_token),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid})


async def create_authorization_code(
    *,
    session: AsyncSession,
    settings: OAuthSettings,
    client_id: str,
    user_id: str,
    org_id: str | None,
    redirect_uri: str,
    scope: str,
    nonce: str | None,
    code_challenge: str,
    session_id: str | None,
    auth_time: datetime,
    amr: list[str],
) -> str:
    """A new single-use authorization code; only its hash is stored."""
    code = new_opaque_token()
    tokens_repository.add_code(
        session,
        AuthorizationCode(
            code_hash=token_digest(code),
            client_id=client_id,
            user_id=user_id,
            org_id=org_id,
            redirect_uri=redirect_uri,
            scope=scope,
            nonce=nonce,
            code_challenge=code_challenge,
            session_id=session_id,
            auth_time=auth_time,
            amr=amr,
            expires_at=utcnow() + timedelta(seconds=settings.oauth_code_ttl_s),
        ),
    )
    await session.flush()
    return code


async def _revoke_family(
    *, session: AsyncSession, family_id: str, now: datetime, reason: str
) -> list[tuple[str, datetime]]:
    live = list(await tokens_repository.revoke_family(session, family_id=family_id, now=now))
    await deny_access_tokens(session=session, tokens=live, reason=reason)
    return live


async def deny_access_tokens(
    *, session: AsyncSession, tokens: list[tuple[str, datetime]], reason: str
) -> None:
    """Deny access tokens until they expire, and tell every verifier through an event."""
    if not tokens:
        return
    now = utcnow()
    tokens = [(jti, _aware(until)) for jti, until in tokens]
    await tokens_repository.deny_access_tokens(session, tokens=tokens, now=now)
    revoked = AccessTokensRevoked(
        jtis=[jti for jti, _ in tokens], until=max(until for _, until in tokens), reason=reason
    )
    await outbox.add(session, new_event(revoked, subject=tokens[0][0]))


async def _new_refresh_token(
    *,
    session: AsyncSession,
    settings: OAuthSettings,
    family_id: str,
    generation: int,
    client_id: str,
    user_id: str,
    org_id: str | None,
    scope: str,
    auth_time: datetime,
    amr: list[str],
    access_jti: str,
    access_expires_at: datetime,
) -> str:
    token = new_opaque_token()
    now = utcnow()
    await tokens_repository.insert_refresh_token(
        session,
        {
            "id": new_id(),
            "token_hash": token_digest(token),
            "family_id": family_id,
            "client_id": client_id,
            "user_id": user_id,
            "org_id": org_id,
            "scope": scope,
            "auth_time": auth_time,
            "amr": amr,
            "access_jti": access_jti,
            "access_expires_at": access_expires_at,
            "generation": generation,
            "created_at": now,
            "expires_at": now + timedelta(seconds=settings.oauth_refresh_token_ttl_s),
            "used_at": None,
            "revoked_at": None,
        },
    )
    return token


async def _user_claims(
    *, session: AsyncSession, user_id: str, scopes: set[str], grant: PersonGrant
) -> dict[str, Any]:
    """The claims about the person the scopes release (userinfo, ID token)."""
    user = await people_repository.get(session, user_id=user_id)
    claims: dict[str, Any] = {"sub": user_id}
    if user is None:
        return claims
    if "profile" in scopes:
        claims["name"] = user.name
        claims["updated_at"] = int(_aware(user.updated_at).timestamp())
    if "email" in scopes and user.email:
        claims["email"] = user.email
    if "phone" in scopes and user.phone:
        claims["phone_number"] = user.phone
    if "pingtai" in scopes:
        claims["roles"] = grant.roles
        claims["acr"] = str(grant.acr)
        if grant.org_id is not None:
            claims["org"] = grant.org_id
    return claims


async def exchange_code(
    *,
    session: AsyncSession,
    issuer: Issuer,
    client: OAuthClient,
    code: str,
    redirect_uri: str | None,
    code_verifier: str | None,
) -> TokenResponse:
    """Trade an authorization code for tokens; a replayed code revokes what it issued."""
    if "authorization_code" not in client.grant_types:
        raise OAuthError("unauthorized_client", "This client may not use authorization_code.")
    stored = await tokens_repository.get_code(session, token_digest(code))
    now = utcnow()
    if stored is None or stored.client_id != client.client_id:
        raise invalid_grant("The authorization code is invalid.")
    if stored.used_at is not None:
        # RFC 6749 §4.1.2: a code used twice revokes the tokens issued from it.
        live: list[tuple[str, datetime]] = []
        if stored.family_id:
            live = await _revoke_family(
                session=session, family_id=stored.family_id, now=now, reason="code_reuse"
            )
        if stored.access_jti and stored.access_expires_at:
            extra = [(stored.access_jti, _aware(stored.access_expires_at))]
            await deny_access_tokens(session=session, tokens=extra, reason="code_reuse")
            live += extra
        reused = RefreshTokenReused(
            family_id=stored.family_id or "",
            client_id=client.client_id,
            user_id=stored.user_id,
            kind="authorization_code",
            revoked_access_tokens=len(live),
        )
        await outbox.add(session, new_event(reused, subject=stored.user_id))
        raise invalid_grant("The authorization code was already used.")
    if _aware(stored.expires_at) <= now:
        raise invalid_grant("The authorization code has expired.")
    if redirect_uri != stored.redirect_uri:
        raise invalid_grant("redirect_uri differs from the one in the authorization request.")
    if not code_verifier:
        raise invalid_request("code_verifier is required (PKCE).")
    if not (43 <= len(code_verifier) <= 128) or not hmac.compare_digest(
        pkce_challenge(code_verifier), stored.code_challenge
    ):
        raise invalid_grant("The code_verifier does not match the code_challenge.")
    grant = await person_grant(session=session, user_id=stored.user_id, org_id=stored.org_id)
    if grant is None:
        raise invalid_grant("The account is no longer active for this organisation.")
    auth_time = _aware(stored.auth_time)
    access_token, jti, expires_at = await issue_access_token(
        issuer,
        session=session,
        sub=stored.user_id,
        client_id=client.client_id,
        scope=stored.scope,
        org=grant.org_id,
        roles=grant.roles,
        acr=grant.acr,
        auth_time=auth_time,
    )
    family_id = new_id() if "refresh_token" in client.grant_types else None
    if not await tokens_repository.consume_code(
        session,
        code_hash=stored.code_hash,
        now=now,
        family_id=family_id,
        access_jti=jti,
        access_expires_at=expires_at,
    ):
        raise invalid_grant("The authorization code was already used.")
    response = TokenResponse(
        access_token=access_token,
        expires_in=issuer.settings.oauth_access_token_ttl_s,
        scope=stored.scope,
        jti=jti,
        expires_at=expires_at,
    )
    if family_id is not None:
        response.refresh_token = await _new_refresh_token(
            session=session,
            settings=issuer.settings,
            family_id=family_id,
            generation=0,
            client_id=client.client_id,
            user_id=stored.user_id,
            org_id=grant.org_id,
            scope=stored.scope,
            auth_time=auth_time,
            amr=stored.amr,
            access_jti=jti,
            access_expires_at=expires_at,
        )
    scopes = set(stored.scope.split())
    if "openid" in scopes:
        # Claims go to userinfo; the ID token carries the identity (and pingtai's own claims).
        pingtai_claims = await _user_claims(
            session=session, user_id=stored.user_id, scopes=scopes & {"pingtai"}, grant=grant
        )
        pingtai_claims.pop("acr", None)
        response.id_token = await issue_id_token(
            issuer,
            session=session,
            client_id=client.client_id,
            user_id=stored.user_id,
            nonce=stored.nonce,
            auth_time=auth_time,
            acr=grant.acr,
            amr=stored.amr,
            access_token=access_token,
            extra_claims=pingtai_claims,
        )
    return response


def _narrowed_scope(requested: str | None, granted: str) -> str:
    if requested is None:
        return granted
    asked = requested.split()
    if not asked or not set(asked) <= set(granted.split()):
        raise OAuthError("invalid_scope", "The scope asked for exceeds the scope granted.")
    return " ".join(dict.fromkeys(asked))


async def _refuse_reuse(
    *,
    session: AsyncSession,
    family_id: str,
    user_id: str,
    revoked: bool,
    client: OAuthClient,
    now: datetime,
) -> NoReturn:
    """A refresh token used a second time: revoke its family (once) and refuse."""
    if not revoked:
        live = await _revoke_family(
            session=session, family_id=family_id, now=now, reason="refresh_token_reuse"
        )
        reused = RefreshTokenReused(
            family_id=family_id,
            client_id=client.client_id,
            user_id=user_id,
            kind="refresh_token",
            revoked_access_tokens=len(live),
        )
        await outbox.add(session, new_event(reused, subject=user_id))
        raise invalid_grant("The refresh token was already used; its family is revoked.")
    raise invalid_grant("The refresh token is invalid, expired or revoked.")


def _rotation_grant(current: tokens_repository.Rotation) -> PersonGrant | None:
    """What the rotated token says about the person; None when the account is not active or
    no longer belongs to the token's organisation (the rules of ``person_grant``)."""
    if current.user_status != "active":
        return None
    org_id = current.org_id
    if org_id is not None and not any(org == org_id for org, _ in current.memberships):
        return None
    roles = list(dict.fromkeys(role for _, role in current.memberships))
    return PersonGrant(user_id=current.user_id, acr=current.acr, roles=roles, org_id=org_id)


async def refresh(
    *,
    session: AsyncSession,
    issuer: Issuer,
    client: OAuthClient,
    refresh_token: str,
    scope: str | None,
) -> TokenResponse:
    """Rotate a refresh token: a new access token and a new refresh token of the same family;
    a token used a second time revokes the whole family."""
    if "refresh_token" not in client.grant_types:
        raise OAuthError("unauthorized_client", "This client may not use refresh_token.")
    now = utcnow()
    token_hash = token_digest(refresh_token)
    # Read first, write last: one read gives the token, the account and its roles; the
    # signature is made before the writes, which on SQLite queue for the one write lock and on
    # PostgreSQL hold the row lock until COMMIT. Then two writes: consume (conditional, so two
    # concurrent presentations cannot both win) and insert the successor.
    current = await tokens_repository.rotation(session, token_hash=token_hash)
    if current is None or current.client_id != client.client_id:
        raise invalid_grant("The refresh token is invalid, expired or revoked.")
    if current.used_at is not None:
        await _refuse_reuse(
            session=session,
            family_id=current.family_id,
            user_id=current.user_id,
            revoked=current.revoked_at is not None,
            client=client,
            now=now,
        )
    if current.revoked_at is not None or _aware(current.expires_at) <= now:
        raise invalid_grant("The refresh token is invalid, expired or revoked.")
    new_scope = _narrowed_scope(scope, current.scope)
    grant = _rotation_grant(current)
    if grant is None:
        await _revoke_family(
            session=session, family_id=current.family_id, now=now, reason="account_changed"
        )
        raise invalid_grant("The account is no longer active for this organisation.")
    auth_time = _aware(current.auth_time)
    access_token, jti, expires_at = await issue_access_token(
        issuer,
        session=session,
        sub=current.user_id,
        client_id=client.client_id,
        scope=new_scope,
        org=grant.org_id,
        roles=grant.roles,
        acr=grant.acr,
        auth_time=auth_time,
    )
    if not await tokens_repository.consume_refresh_token(session, token_hash=token_hash, now=now):
        # Used (or revoked) by a concurrent request since it was read: a reuse all the same.
        used_at, revoked_at = await tokens_repository.refresh_token_state(
            session, token_hash=token_hash
        )
        if used_at is not None:
            await _refuse_reuse(
                session=session,
                family_id=current.family_id,
                user_id=current.user_id,
                revoked=revoked_at is not None,
                client=client,
                now=now,
            )
        raise invalid_grant("The refresh token is invalid, expired or revoked.")
    new_refresh = await _new_refresh_token(
        session=session,
        settings=issuer.settings,
        family_id=current.family_id,
        generation=current.generation + 1,
        client_id=client.client_id,
        user_id=current.user_id,
        org_id=grant.org_id,
        # The family keeps its original scope, so a narrowed request does not shrink it.
        scope=current.scope,
        auth_time=auth_time,
        amr=current.amr,
        access_jti=jti,
        access_expires_at=expires_at,
    )
    return TokenResponse(
        access_token=access_token,
        expires_in=issuer.settings.oauth_access_token_ttl_s,
        scope=new_scope,
        refresh_token=new_refresh,
        jti=jti,
        expires_at=expires_at,
    )


async def client_credentials(
    *, session: AsyncSession, issuer: Issuer, client: OAuthClient, scope: str | None
) -> TokenResponse:
    """A token for a department's or enterprise's system: the client's org and roles, no
    refresh token, nothing stored."""
    if "client_credentials" not in client.grant_types:
        raise OAuthError("unauthorized_client", "This client may not use client_credentials.")
    granted = " ".join(client.scopes)
    new_scope = granted if scope is None else _narrowed_scope(scope, granted)
    access_token, jti, expires_at = await issue_access_token(
        issuer,
        session=session,
        sub=client.client_id,
        client_id=client.client_id,
        scope=new_scope,
        org=client.org_id,
        roles=list(client.roles),
        acr=None,
    )
    return TokenResponse(
        access_token=access_token,
        expires_in=issuer.settings.oauth_access_token_ttl_s,
        scope=new_scope,
        jti=jti,
        expires_at=expires_at,
    )


async def published_key_of(
    *, session: AsyncSession, issuer: Issuer, token: str
) -> tuple[dict[str, Any], LoadedKey] | None:
    """A JWT's header and the published key its ``kid`` names (the signature is not checked
    yet); None for anything else."""
    if len(token) > 8192 or token.count(".") != 2:
        return None
    try:
        header = jwt.get_unverified_header(token)
    except PyJWTError:
        return None
    if not isinstance(header.get("kid"), str):
        return None
    key = await issuer.ring.verification_key(header["kid"], session=session)
    return None if key is None else (header, key)


async def decode_published(
    *, session: AsyncSession, issuer: Issuer, token: str, access: bool, **decode: Any
) -> dict[str, Any] | None:
    """The verified claims of a JWT this provider signed with a published key: an access token
    when ``access``, an ID token otherwise; None for anything else. ``decode`` goes to
    ``jwt.decode`` (audience, options)."""
    found = await published_key_of(session=session, issuer=issuer, token=token)
    if found is None or (found[0].get("typ") == ACCESS_TOKEN_TYPE) != access:
        return None
    key = found[1]
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key.public_key, algorithms=[key.alg], issuer=issuer.issuer, **decode
        )
    except PyJWTError:
        return None
    return claims


async def decode_access_token(
    *, session: AsyncSession, issuer: Issuer, token: str, check_revoked: bool = True
) -> dict[str, Any] | None:
    """The claims of one of our live access tokens; None if it is not one, expired or revoked."""
    claims = await decode_published(
        session=session,
        issuer=issuer,
        token=token,
        access=True,
        audience=issuer.audience,
        options={"require": ["exp", "iat", "jti", "sub", "client_id"]},
    )
    if claims is None:
        return None
    if check_revoked and await tokens_repository.is_access_token_revoked(session, claims["jti"]):
        return None
    return claims


async def revoke(
    *, session: AsyncSession, issuer: Issuer, client: OAuthClient, token: str, hint: str | None
) -> list[tuple[str, datetime]]:
    """RFC 7009: revoke a refresh token (and its family) or an access token of this client.

    Unknown, expired or foreign tokens are ignored, as the RFC asks. Returns the access tokens
    now denied (jti, expiry), so the caller's process can deny them at once.
    """
    order = ["refresh_token", "access_token"]
    if hint == "access_token":
        order.reverse()
    for kind in order:
        if kind == "refresh_token":
            stored = await tokens_repository.get_refresh_token(session, token_digest(token))
            if stored is not None and stored.client_id == client.client_id:
                if stored.revoked_at is None:
                    return await _revoke_family(
                        session=session, family_id=stored.family_id, now=utcnow(), reason="revoked"
                    )
                return []
        else:
            claims = await decode_access_token(
                session=session, issuer=issuer, token=token, check_revoked=False
            )
            if claims is not None and claims["client_id"] == client.client_id:
                denied = [(claims["jti"], datetime.fromtimestamp(claims["exp"], UTC))]
                await deny_access_tokens(session=session, tokens=denied, reason="revoked")
                return denied
    return []


async def introspect(
    *, session: AsyncSession, issuer: Issuer, client: OAuthClient, token: str, hint: str | None
) -> dict[str, Any]:
    """RFC 7662: what a token stands for, or ``{"active": false}``."""
    kinds = ["access_token", "refresh_token"]
    if hint == "refresh_token":
        kinds.reverse()
    for kind in kinds:
        if kind == "access_token":
            claims = await decode_access_token(session=session, issuer=issuer, token=token)
            if claims is not None:
                return {"active": True, "token_type": "Bearer", **claims}
        else:
            stored = await tokens_repository.get_refresh_token(session, token_digest(token))
            # A refresh token is only its own client's business.
            if (
                stored is not None
                and stored.client_id == client.client_id
                and stored.used_at is None
                and stored.revoked_at is None
                and _aware(stored.expires_at) > utcnow()
            ):
                return {
                    "active": True,
                    "token_type": "refresh_token",
                    "client_id": stored.client_id,
                    "sub": stored.user_id,
                    "scope": stored.scope,
                    "exp": int(_aware(stored.expires_at).timestamp()),
                    "iat": int(_aware(stored.created_at).timestamp()),
                    "iss": issuer.issuer,
                }
    return {"active": False}


async def userinfo(*, session: AsyncSession, issuer: Issuer, token: str) -> dict[str, Any]:
    """OpenID Connect userinfo for a live access token with the ``openid`` scope."""
    claims = await decode_access_token(session=session, issuer=issuer, token=token)
    if claims is None:
        raise OAuthError(
            "invalid_token",
            "The access token is invalid, expired or revoked.",
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="pingtai", error="invalid_token"'},
        )
    scopes = set(str(claims.get("scope", "")).split())
    if "openid" not in scopes or claims["sub"] == claims["client_id"]:
        raise OAuthError(
            "insufficient_scope",
            "userinfo needs a person's access token with the openid scope.",
            status=403,
            headers={
                "WWW-Authenticate": 'Bearer realm="pingtai", error="insufficient_scope", '
                'scope="openid"'
            },
        )
    grant = await person_grant(session=session, user_id=claims["sub"], org_id=claims.get("org"))
    if grant is None:
        raise OAuthError(
            "invalid_token",
            "The account is no longer active.",
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="pingtai", error="invalid_token"'},
        )
    return await _user_claims(session=session, user_id=claims["sub"], scopes=scopes, grant=grant)
