"""The indicator system of the composite index, and the scores it gives."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.evaluation.indicators.definitions import BY_KEY
from services.evaluation.reviews.schemas import UtcDatetime

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)

DimensionKey = Literal[
    "governance_precision",
    "service_experience",
    "data_value",
    "institutional_inclusiveness",
    "infrastructure_perception",
]
DIMENSION_KEYS: tuple[str, ...] = get_args(DimensionKey)


class WeightedIndicator(BaseModel):
    """An indicator in a dimension: its weight, and the values that score 0 and 100.

    The score is ``clamp((value - floor) / (target - floor), 0, 1) * 100``; a target below the
    floor means lower is better (e.g. a bad-review rate: target 0.01, floor 0.2).
    """

    model_config = _STRICT

    indicator: str = Field(max_length=64)
    weight: float = Field(gt=0, le=100)
    target: float = Field(ge=-1e9, le=1e9, description="The value that scores 100.")
    floor: float = Field(ge=-1e9, le=1e9, description="The value that scores 0.")

    @model_validator(mode="after")
    def _known(self) -> WeightedIndicator:
        if self.indicator not in BY_KEY:
            raise ValueError(f"unknown indicator {self.indicator!r}")
        if self.target == self.floor:
            raise ValueError("target and floor must differ")
        return self


class Dimension(BaseModel):
    """One of the five dimensions, its weight in the composite and its indicators."""

    model_config = _STRICT

    key: DimensionKey
    name_zh: str = Field(min_length=1, max_length=50)
    name_en: str = Field(min_length=1, max_length=100)
    weight: float = Field(gt=0, le=100)
    indicators: list[WeightedIndicator] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _distinct(self) -> Dimension:
        keys = [i.indicator for i in self.indicators]
        if len(set(keys)) != len(keys):
            raise ValueError("an indicator appears twice in the dimension")
        return self


class IndexSystemDefinition(BaseModel):
    """The five dimensions of the reform's assessment framework, each a weighted set."""

    model_config = _STRICT

    dimensions: list[Dimension] = Field(min_length=5, max_length=5)

    @model_validator(mode="after")
    def _all_five(self) -> IndexSystemDefinition:
        if sorted(d.key for d in self.dimensions) != sorted(DIMENSION_KEYS):
            raise ValueError(f"the dimensions must be exactly {', '.join(DIMENSION_KEYS)}")
        return self


class IndexSystemCreate(IndexSystemDefinition):
    """A new version of the indicator system (platform admins)."""

    note: str | None = Field(default=None, max_length=1000)


class IndexSystem(IndexSystemDefinition):
    """A stored version; version 0 is the built-in default, used until one is stored."""

    version: int
    note: str | None
    created_at: UtcDatetime | None
    created_by: str | None


class IndicatorScore(BaseModel):
    """One indicator's part in a score."""

    dimension: str
    indicator: str
    value: float | None
    score: float | None = Field(description="0-100; null without a value.")
    weight: float
    contribution: float = Field(description="Points this indicator adds to the composite.")


class ScoreCard(BaseModel):
    """A scope's composite index for a period."""

    rank: int | None = Field(description="1 is best; null without a composite score.")
    scope_kind: str
    scope_id: str
    name: str | None
    composite: float | None
    dimensions: dict[str, float | None]
    contributions: list[IndicatorScore]


class Period(BaseModel):
    """The days a figure covers (local calendar days, both ends included)."""

    start: str
    end: str
    days: int


class Ranking(BaseModel):
    """Every scope of a kind ranked by its composite index for a period."""

    system_version: int
    period: Period
    items: list[ScoreCard]
