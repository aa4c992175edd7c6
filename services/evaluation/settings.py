"""Settings of the evaluation part, from ``PINGTAI_EVALUATION_*`` variables."""

from __future__ import annotations

from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from libs.common.settings import PartSettings


class EvaluationSettings(PartSettings):
    """The evaluation part's settings."""

    part: ClassVar[str] = "evaluation"

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_EVALUATION_", extra="ignore", populate_by_name=True
    )

    # Reviews (好差评): how long after submitting its author may still change a review.
    review_edit_window_s: float = Field(default=24 * 3600, ge=0, le=30 * 24 * 3600)
    # Rectification (差评整改): working days a department has to reply to a bad review.
    case_deadline_working_days: int = Field(default=5, ge=1, le=60)
    # How many times an applicant may reopen a case after a reply.
    case_max_reopens: int = Field(default=2, ge=0, le=10)
    # The overdue timer's period; every replica runs it, each case is claimed once.
    case_overdue_poll_s: float = Field(default=60.0, gt=0)
    # Days (and so periods) are counted in this time zone.
    timezone: str = "Asia/Shanghai"
    # Channels that count as online (网上); any other (counter, ...) means a visit.
    online_channels: list[str] = Field(
        default=["online", "web", "app", "mobile", "mini_program", "self_service"]
    )

    # Events per projection transaction: a batch's rows share one upsert per shape and one
    # commit, so CPU per event falls with the batch (docs/evaluation.md, Performance); the
    # parts' usual default is 100.
    events_consumer_batch: int = Field(default=500, ge=1, le=1000)

    # Rankings kept as computed (per period, scope kind, region level and system version); the
    # oldest computed is dropped beyond this.
    stored_rankings: int = Field(default=256, ge=1, le=100_000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value
