"""The OpenID provider's settings, part of ``IdentitySettings`` (``PINGTAI_IDENTITY_OAUTH_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

SigningAlg = Literal["RS256", "ES256"]

# Development-only secrets of the bootstrap clients, so `pingtai up` works out of the box.
DEV_PORTAL_CLIENT_SECRET = "pingtai-dev-portal-secret"  # documented dev default
DEV_ADMIN_CLIENT_SECRET = "pingtai-dev-admin-secret"  # documented dev default


class OAuthSettings(BaseModel):
    """Token lifetimes, signing, sign-in throttling and the bootstrap clients."""

    # Tokens.
    oauth_access_token_ttl_s: int = Field(default=300, ge=30, le=3600)
    oauth_id_token_ttl_s: int = Field(default=300, ge=30, le=3600)
    oauth_refresh_token_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    oauth_code_ttl_s: int = Field(default=60, ge=10, le=600)
    # ES256 signs ~8x faster than RS256; ID tokens use RS256, which OpenID Connect requires.
    oauth_access_token_alg: SigningAlg = "ES256"
    oauth_id_token_alg: SigningAlg = "RS256"

    # Registered clients stay in each process's memory this long; a change made through one
    # process is seen by it at once, by the other replicas within this many seconds.
    oauth_client_cache_ttl_s: float = Field(default=5.0, ge=0, le=300)

    # Signing keys.
    oauth_key_check_interval_s: float = Field(default=5.0, ge=0)
    # A new key is published this long before it signs, so verifiers that cached the JWKS a
    # moment ago (libs.common.auth refetches at most every auth_jwks_refetch_floor_s) know it.
    oauth_key_activation_delay_s: float = Field(default=60.0, ge=0)
    # A retired key stays in the JWKS this long after the longest token lifetime.
    oauth_key_retention_margin_s: float = Field(default=300.0, ge=0)

    # The identity-provider session (the cookie that skips the sign-in form).
    oauth_session_ttl_s: int = Field(default=8 * 3600, ge=60)
    oauth_session_cookie: str = "pingtai_idp_session"
    oauth_sign_in_form_ttl_s: int = Field(default=900, ge=60)

    # Throttling: failures per account, then a lock; failures per client address in a window.
    oauth_account_max_failures: int = Field(default=5, ge=1)
    oauth_account_lock_s: int = Field(default=15 * 60, ge=1)
    oauth_ip_max_failures: int = Field(default=50, ge=1)
    oauth_ip_window_s: int = Field(default=15 * 60, ge=1)

    # Bootstrap clients, created or updated at start-up. Empty secret: the development default
    # outside production; in production the client is not bootstrapped.
    oauth_portal_client_id: str = "portal"
    oauth_portal_client_secret: str = ""
    oauth_portal_redirect_uris: list[str] = Field(default_factory=list)
    oauth_portal_post_logout_redirect_uris: list[str] = Field(default_factory=list)
    oauth_admin_client_id: str = "platform-admin"
    oauth_admin_client_secret: str = ""
