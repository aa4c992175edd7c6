"""Access tokens verified locally and the authorisation every service checks the same way.

A service protects an endpoint with ``CurrentPrincipal`` and the guards; see docs/authorisation.md.
"""

from libs.common.auth.dependencies import (
    AUTH_RESPONSES,
    CurrentPrincipal,
    Guard,
    OptionalPrincipal,
    bearer_scheme,
    close_token_verifier,
    ensure_acts_for,
    require_acr,
    require_roles,
    require_scopes,
    token_verifier,
)
from libs.common.auth.exceptions import (
    AuthenticationRequired,
    InsufficientAssurance,
    InsufficientScope,
    InvalidToken,
    TokenVerificationUnavailable,
)
from libs.common.auth.jwks import ALLOWED_ALGORITHMS, JwksCache
from libs.common.auth.principal import Principal, Role
from libs.common.auth.verifier import TokenVerifier

__all__ = [
    "ALLOWED_ALGORITHMS",
    "AUTH_RESPONSES",
    "AuthenticationRequired",
    "CurrentPrincipal",
    "Guard",
    "InsufficientAssurance",
    "InsufficientScope",
    "InvalidToken",
    "JwksCache",
    "OptionalPrincipal",
    "Principal",
    "Role",
    "TokenVerificationUnavailable",
    "TokenVerifier",
    "bearer_scheme",
    "close_token_verifier",
    "ensure_acts_for",
    "require_acr",
    "require_roles",
    "require_scopes",
    "token_verifier",
]
