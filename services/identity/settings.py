"""Settings of the identity part, from ``PINGTAI_IDENTITY_*`` variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from libs.common.settings import PartSettings
from services.identity.oauth.settings import OAuthSettings


class IdentitySettings(PartSettings, OAuthSettings):
    """The identity part's settings."""

    part: ClassVar[str] = "identity"

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_IDENTITY_", extra="ignore", populate_by_name=True
    )
