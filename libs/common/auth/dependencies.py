"""FastAPI dependencies: who is calling (``CurrentPrincipal``) and guards on roles, scopes, acr."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from libs.common.auth.exceptions import (
    AuthenticationRequired,
    InsufficientAssurance,
    InsufficientScope,
    InvalidToken,
)
from libs.common.auth.principal import Principal, Role
from libs.common.auth.verifier import TokenVerifier
from libs.common.errors import PROBLEM_CONTENT_TYPE, Forbidden, Problem

# Reads the header for OpenAPI's "security"; the checks that matter are ours, below.
bearer_scheme = HTTPBearer(
    scheme_name="AccessToken",
    bearerFormat="JWT",
    description="An access token from the platform's identity service (RFC 9068 JWT).",
    auto_error=False,
)

# The same header read by OptionalPrincipal: its own scheme name only marks, in the document
# FastAPI builds, the operations where the token is optional (document_optional_tokens).
_optional_bearer_scheme = HTTPBearer(scheme_name="OptionalAccessToken", auto_error=False)

Guard = Callable[[Principal], Coroutine[Any, Any, Principal]]

# Declared on protected routers so the OpenAPI documents list the answers at the door.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "model": Problem,
        "content": {PROBLEM_CONTENT_TYPE: {}},
        "description": "No access token, an invalid one, or too weak a sign-in",
    },
    403: {
        "model": Problem,
        "content": {PROBLEM_CONTENT_TYPE: {}},
        "description": "The caller lacks a role, scope or organisation this needs",
    },
    503: {
        "model": Problem,
        "content": {PROBLEM_CONTENT_TYPE: {}},
        "description": "The signing keys cannot be fetched yet",
    },
}


def token_verifier(app: FastAPI) -> TokenVerifier:
    """The app's verifier, made from its settings on first use."""
    verifier: TokenVerifier | None = getattr(app.state, "token_verifier", None)
    if verifier is None:
        verifier = TokenVerifier.from_settings(app.state.settings)
        app.state.token_verifier = verifier
    return verifier


async def close_token_verifier(app: FastAPI) -> None:
    """Close the app's verifier, if one was made (at shutdown)."""
    verifier: TokenVerifier | None = getattr(app.state, "token_verifier", None)
    if verifier is not None:
        app.state.token_verifier = None
        await verifier.aclose()


async def _principal_from(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal | None:
    if credentials is None:
        header = request.headers.get("authorization")
        if header is None:
            return None
        if header.strip().partition(" ")[0].lower() == "bearer":
            raise InvalidToken("The Authorization header carries no token.")
        raise AuthenticationRequired("Send the access token as 'Authorization: Bearer <token>'.")
    return await token_verifier(request.app).verify(credentials.credentials)


async def _optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_optional_bearer_scheme)],
) -> Principal | None:
    return await _principal_from(request, credentials)


async def _current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    principal = await _principal_from(request, credentials)
    if principal is None:
        raise AuthenticationRequired()
    return principal


async def authenticate(request: Request) -> Principal:
    """The verified caller of ``request`` (401 without a valid access token): what
    ``CurrentPrincipal`` gives, for a handler FastAPI resolves no dependencies for.

    The header is read as ``bearer_scheme`` reads it (the scheme, case-insensitive, then the
    token, stripped), without the credentials model it builds for FastAPI."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if scheme and token and scheme.lower() == "bearer":
        return await token_verifier(request.app).verify(token)
    return await _current_principal(request, None)


def document_optional_tokens(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document say so where a token is optional: an operation that
    reads an ``OptionalPrincipal`` and nothing that requires one gets the security requirement
    ``[{}, {"AccessToken": []}]`` (none, or the bearer token), not FastAPI's "AccessToken
    required"."""
    build = app.openapi
    optional_name = _optional_bearer_scheme.scheme_name
    optional: dict[str, list[str]] = {optional_name: []}

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI's own, cached until the routes change; the edit is idempotent
        schema.get("components", {}).get("securitySchemes", {}).pop(optional_name, None)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                security = operation.get("security") if isinstance(operation, dict) else None
                if not security or optional not in security:
                    continue
                required = [r for r in security if r != optional]
                operation["security"] = required or [{}, {bearer_scheme.scheme_name: []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# The caller, verified; 401 without a valid access token.
CurrentPrincipal = Annotated[Principal, Depends(_current_principal)]
# The caller if a token is sent (and then it must be valid), else None.
OptionalPrincipal = Annotated[Principal | None, Depends(_optional_principal)]


def require_roles(*roles: Role) -> Guard:
    """A dependency giving the principal if it holds any of ``roles``, else 403."""
    if not roles:
        raise ValueError("require_roles needs at least one role")
    wanted = frozenset(roles)
    names = ", ".join(sorted(wanted))

    async def holds_a_role(principal: CurrentPrincipal) -> Principal:
        if principal.roles.isdisjoint(wanted):
            raise Forbidden(f"This needs one of the roles: {names}.")
        return principal

    return holds_a_role


def require_scopes(*scopes: str) -> Guard:
    """A dependency giving the principal if its token grants all of ``scopes``, else 403."""
    if not scopes:
        raise ValueError("require_scopes needs at least one scope")
    wanted = frozenset(scopes)

    async def holds_the_scopes(principal: CurrentPrincipal) -> Principal:
        if not wanted <= principal.scopes:
            raise InsufficientScope(wanted)
        return principal

    return holds_the_scopes


def require_acr(level: int) -> Guard:
    """A dependency giving the principal if it signed in at assurance ``level`` or higher.

    Too low a level is a 401 step-up challenge (RFC 9470), not a 403: signing in again at the
    level asked for cures it.
    """
    if level not in (1, 2, 3):
        raise ValueError("an assurance level is 1, 2 or 3")

    async def signed_in_strongly(principal: CurrentPrincipal) -> Principal:
        if principal.acr < level:
            raise InsufficientAssurance(level)
        return principal

    return signed_in_strongly


def ensure_acts_for(principal: Principal, org_id: str) -> None:
    """Raise Forbidden unless ``principal`` acts for ``org_id`` (or is a platform admin)."""
    if not principal.acts_for(org_id):
        raise Forbidden("You do not act for this organisation.")
