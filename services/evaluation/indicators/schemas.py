"""What the indicator APIs answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from services.evaluation.index.schemas import Period

ScopeKind = Literal["platform", "department", "region", "item"]
SCOPE_PATTERN = r"^(platform|department:[A-Za-z0-9_-]{1,64}|region:\d{6}|item:[A-Za-z0-9_-]{1,64})$"


class IndicatorDefinition(BaseModel):
    """An indicator's name, unit and formula over the counters."""

    key: str
    name_zh: str
    name_en: str
    unit: str
    formula: str


class ScopeValues(BaseModel):
    """Every indicator of one scope over one period, and the counters they come from."""

    scope_kind: ScopeKind
    scope_id: str
    name: str | None
    period: Period
    values: dict[str, float | None]
    counters: dict[str, int]


class SeriesPoint(BaseModel):
    """One step of a time series."""

    start: str
    end: str
    values: dict[str, float | None]


class Series(BaseModel):
    """Indicators of one scope, day by day or month by month."""

    scope_kind: ScopeKind
    scope_id: str
    granularity: Literal["day", "month"]
    indicators: list[str]
    points: list[SeriesPoint]


class Breakdown(BaseModel):
    """A scope's figures and those of the scopes under it (drill-down)."""

    scope: ScopeValues
    by: Literal["region", "department", "item"]
    children: list[ScopeValues] = Field(description="Ordered by scope id.")


class RecomputeCheck(BaseModel):
    """The result of comparing the live indicators with a rebuild from the streams."""

    identical: bool
    live_rows: int
    rebuilt_rows: int
    differences: list[str]
