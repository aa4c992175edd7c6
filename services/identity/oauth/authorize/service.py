"""The authorization request's rules (RFC 6749 §4.1, RFC 7636, OIDC Core §3.1.2) and the signed
form state that carries a request across the sign-in pages, bound to the browser (CSRF)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import jwt
from jwt.exceptions import PyJWTError
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.ids import utcnow
from services.identity.oauth.clients.models import OAuthClient
from services.identity.oauth.derived_keys import derive_key
from services.identity.organisations import repository as organisations_repository
from services.identity.organisations.models import Organisation

PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
PROMPTS = frozenset({"none", "login", "consent", "select_account"})
SINGLE_VALUED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "response_mode",
)
MAX_PARAM_LENGTH = 2048


class AuthorizeError(Exception):
    """An authorization error; ``redirect`` False when it must not go to the redirect URI."""

    def __init__(self, error: str, description: str, *, redirect: bool = True) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect = redirect


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A checked authorization request."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: list[str] = field(default_factory=list)
    max_age: int | None = None

    def fields(self) -> dict[str, Any]:
        """The request as plain values, to sign into a form."""
        return asdict(self)


def check_client_and_redirect(
    client: OAuthClient | None, params: Mapping[str, list[str]]
) -> tuple[OAuthClient, str]:
    """The client and redirect URI, exactly as registered; errors that must not redirect."""
    client_ids = params.get("client_id", [])
    if len(client_ids) != 1 or client is None:
        raise AuthorizeError("invalid_client", "The client is unknown or disabled.", redirect=False)
    redirect_uris = params.get("redirect_uri", [])
    if len(redirect_uris) != 1 or redirect_uris[0] not in client.redirect_uris:
        # Exact matching (OAuth 2.1 §2.3.1): no prefixes, no wildcards, no defaults.
        raise AuthorizeError(
            "invalid_request",
            "The redirect_uri is missing or not registered for this client.",
            redirect=False,
        )
    return client, redirect_uris[0]


def check_request(
    client: OAuthClient, redirect_uri: str, params: Mapping[str, list[str]], *, allowed: set[str]
) -> AuthorizationRequest:
    """The rest of the request; AuthorizeError (sent to the redirect URI) when it is wrong."""
    for name in SINGLE_VALUED:
        values = params.get(name, [])
        if len(values) > 1:
            raise AuthorizeError("invalid_request", f"The parameter {name} is repeated.")
        if values and len(values[0]) > MAX_PARAM_LENGTH:
            raise AuthorizeError("invalid_request", f"The parameter {name} is too long.")

    def one(name: str) -> str | None:
        values = params.get(name, [])
        return values[0] if values and values[0] != "" else None

    if "request" in params or "request_uri" in params:
        raise AuthorizeError("request_not_supported", "Request objects are not supported.")
    if one("response_type") != "code":
        raise AuthorizeError("unsupported_response_type", "Only response_type=code is supported.")
    if one("response_mode") not in (None, "query"):
        raise AuthorizeError("invalid_request", "Only response_mode=query is supported.")
    if "authorization_code" not in client.grant_types:
        raise AuthorizeError("unauthorized_client", "This client may not use authorization_code.")
    challenge = one("code_challenge")
    method = one("code_challenge_method")
    if challenge is None:
        raise AuthorizeError("invalid_request", "code_challenge is required (PKCE, S256).")
    if method != "S256":
        raise AuthorizeError(
            "invalid_request", "code_challenge_method must be S256; plain is not accepted."
        )
    if not PKCE_CHALLENGE.match(challenge):
        raise AuthorizeError("invalid_request", "code_challenge is not a base64url SHA-256.")
    scopes = (one("scope") or "openid").split()
    if not set(scopes) <= allowed:
        raise AuthorizeError("invalid_scope", "The scope asks for more than this client may.")
    prompt = (one("prompt") or "").split()
    if not set(prompt) <= PROMPTS or ("none" in prompt and len(prompt) > 1):
        raise AuthorizeError("invalid_request", "prompt is not a valid combination.")
    max_age = None
    raw_max_age = one("max_age")
    if raw_max_age is not None:
        if not raw_max_age.isascii() or not raw_max_age.isdigit() or len(raw_max_age) > 9:
            raise AuthorizeError("invalid_request", "max_age is not a number of seconds.")
        max_age = int(raw_max_age)
    nonce = one("nonce")
    if nonce is not None and len(nonce) > 255:
        raise AuthorizeError("invalid_request", "nonce is too long.")
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=" ".join(dict.fromkeys(scopes)),
        state=one("state"),
        nonce=nonce,
        code_challenge=challenge,
        prompt=prompt,
        max_age=max_age,
    )


def redirect_with(redirect_uri: str, values: Mapping[str, str | None]) -> str:
    """The redirect URI with ``values`` added to its query (keeping what it had)."""
    parts = urlsplit(redirect_uri)
    extra = urlencode({k: v for k, v in values.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


# --- The signed form state -------------------------------------------------------------------


class FormStateInvalid(Exception):
    """A form came back altered, expired, or from another browser."""


def csrf_token(*, secret_key: str, browser_token: str) -> str:
    """The anti-forgery token for this browser: an HMAC of its cookie's random value."""
    key = derive_key(secret_key, "authorize-csrf")
    return hmac.new(key, browser_token.encode(), hashlib.sha256).hexdigest()


def sign_form_state(
    *,
    secret_key: str,
    browser_token: str,
    request: AuthorizationRequest,
    ttl_s: int,
    stage: str,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """The authorization request, signed and bound to the browser, to carry through a form."""
    now = utcnow()
    claims = {
        "req": request.fields(),
        "stage": stage,
        "csrf": csrf_token(secret_key=secret_key, browser_token=browser_token),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
        **(extra or {}),
    }
    return jwt.encode(claims, derive_key(secret_key, "authorize-form-state"), algorithm="HS256")


def read_form_state(
    *, secret_key: str, browser_token: str | None, state: str, csrf: str, stage: str
) -> tuple[AuthorizationRequest, dict[str, Any]]:
    """The request a form carried, after checking its signature, age, stage and CSRF token."""
    if not browser_token or not csrf or len(state) > 8192:
        raise FormStateInvalid("no browser binding")
    expected = csrf_token(secret_key=secret_key, browser_token=browser_token)
    if not hmac.compare_digest(expected, csrf):
        raise FormStateInvalid("bad csrf token")
    try:
        claims: dict[str, Any] = jwt.decode(
            state,
            derive_key(secret_key, "authorize-form-state"),
            algorithms=["HS256"],
            options={"require": ["exp", "iat"]},
        )
    except PyJWTError as exc:
        raise FormStateInvalid(str(exc)) from exc
    if claims.get("stage") != stage or not hmac.compare_digest(claims.get("csrf", ""), expected):
        raise FormStateInvalid("wrong stage or browser")
    try:
        request = AuthorizationRequest(**claims["req"])
    except (KeyError, TypeError) as exc:
        raise FormStateInvalid("malformed request") from exc
    return request, claims


# --- Whom the person acts for ------------------------------------------------------------------


async def organisations_of(*, session: AsyncSession, user_id: str) -> list[Organisation]:
    """The active organisations a person holds a role in, in the order they joined."""
    memberships = await organisations_repository.memberships_of_user(session, user_id=user_id)
    org_ids = list(dict.fromkeys(m.org_id for m in memberships if m.org_id is not None))
    organisations = []
    for org_id in org_ids:
        organisation = await organisations_repository.get(session, org_id=org_id)
        if organisation is not None and organisation.status == "active":
            organisations.append(organisation)
    return organisations
