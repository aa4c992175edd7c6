"""Settings of the portal part, from ``PINGTAI_PORTAL_*`` variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from libs.common.settings import PartSettings

# Identity's documented development default for the portal client (docs/identity.md).
DEV_CLIENT_SECRET = "pingtai-dev-portal-secret"


class PortalSettings(PartSettings):
    """The portal part's settings."""

    part: ClassVar[str] = "portal"

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_PORTAL_", extra="ignore", populate_by_name=True
    )

    # Where people reach the portal (the gateway's public URL): the OIDC redirect URI is built on
    # it. Empty: gateway_url.
    public_url: str = ""
    # Where the portal calls the platform's APIs and identity's token endpoint. Empty:
    # gateway_url (DESIGN: parts call through the gateway; inside a cluster, the gateway service).
    api_url: str = ""
    api_timeout_s: float = Field(default=10.0, gt=0)

    # The portal's confidential OpenID Connect client at identity.
    client_id: str = "portal"
    # Empty outside production: identity's development default. Production must set it.
    client_secret: str = ""
    scopes: str = "openid profile pingtai"

    # Sessions: the cookie, and how long a session lives (absolute, and idle).
    session_cookie: str = "pingtai_portal_session"
    sign_in_cookie: str = "pingtai_portal_sign_in"
    # None: Secure when the public URL is https or in production; false only for http development.
    cookie_secure: bool | None = None
    session_ttl_s: int = Field(default=8 * 3600, gt=0)
    session_idle_s: int = Field(default=3600, gt=0)
    sign_in_ttl_s: int = Field(default=600, gt=0)
    # Refresh the access token when it has fewer than this many seconds left.
    token_refresh_margin_s: float = Field(default=30.0, ge=0)
    # Seconds department names (identity's directory) are kept in memory.
    directory_ttl_s: float = Field(default=600.0, ge=0)

    @model_validator(mode="after")
    def _portal_defaults(self) -> PortalSettings:
        self.public_url = (self.public_url or self.gateway_url).rstrip("/")
        self.api_url = (self.api_url or self.gateway_url).rstrip("/")
        if not self.client_secret:
            if self.env == "production":
                raise ValueError("PINGTAI_PORTAL_CLIENT_SECRET must be set in production")
            self.client_secret = DEV_CLIENT_SECRET
        if self.cookie_secure is None:
            self.cookie_secure = self.env == "production" or self.public_url.startswith("https:")
        return self

    @property
    def redirect_uri(self) -> str:
        """The callback identity sends people back to after signing in."""
        return f"{self.public_url}/auth/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        """Where identity's end-session endpoint sends people back after signing out."""
        return f"{self.public_url}/auth/signed-out"
