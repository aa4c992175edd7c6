"""Settings of the catalog part, from ``PINGTAI_CATALOG_*`` variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from libs.common.settings import PartSettings


class CatalogSettings(PartSettings):
    """The catalog part's settings."""

    part: ClassVar[str] = "catalog"

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_CATALOG_", extra="ignore", populate_by_name=True
    )
