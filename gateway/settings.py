"""Settings of the gateway part, from ``PINGTAI_GATEWAY_*`` variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from libs.common.settings import PartSettings


class GatewaySettings(PartSettings):
    """The gateway part's settings."""

    part: ClassVar[str] = "gateway"

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_GATEWAY_", extra="ignore", populate_by_name=True
    )
