"""Settings of the exchange part, from ``PINGTAI_EXCHANGE_*`` variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from libs.common.settings import PartSettings


class ExchangeSettings(PartSettings):
    """The exchange part's settings."""

    part: ClassVar[str] = "exchange"

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_EXCHANGE_", extra="ignore", populate_by_name=True
    )
