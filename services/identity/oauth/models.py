"""The provider's tables, for the identity part's schema (services/identity/models.py)."""

from __future__ import annotations

from services.identity.oauth.clients.models import OAuthClient
from services.identity.oauth.keys.models import SigningKey
from services.identity.oauth.signin.models import IdpSession, SignInFailure
from services.identity.oauth.tokens.models import (
    AuthorizationCode,
    RefreshToken,
    RevokedAccessToken,
)

OAUTH_MODELS = (
    AuthorizationCode,
    IdpSession,
    OAuthClient,
    RefreshToken,
    RevokedAccessToken,
    SignInFailure,
    SigningKey,
)
