"""Settings of the portal part, from ``PINGTAI_PORTAL_*`` variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from libs.common.settings import PartSettings


class PortalSettings(PartSettings):
    """The portal part's settings."""

    part: ClassVar[str] = "portal"

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_PORTAL_", extra="ignore", populate_by_name=True
    )
