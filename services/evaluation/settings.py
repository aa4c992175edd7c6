"""Settings of the evaluation part, from ``PINGTAI_EVALUATION_*`` variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from libs.common.settings import PartSettings


class EvaluationSettings(PartSettings):
    """The evaluation part's settings."""

    part: ClassVar[str] = "evaluation"

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_EVALUATION_", extra="ignore", populate_by_name=True
    )
