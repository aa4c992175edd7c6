"""The calendar's API shapes: one year's holidays and make-up working days."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.workflow.sla.calendar import SATURDAY

# ISO dates ("2026-10-01") are strings in JSON; everything else is strict.
IsoDate = Annotated[date, Field(strict=False)]
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)
MAX_HOLIDAY_DAYS = 31


class HolidayPeriod(BaseModel):
    """A public holiday period (放假), both ends included."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=100, examples=["国庆节 National Day"])
    start: IsoDate
    end: IsoDate


class CalendarYearUpdate(BaseModel):
    """A year's calendar as the State Council's notice sets it."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        strict=True,
        json_schema_extra={
            "example": {
                "source": "国务院办公厅关于2026年部分节假日安排的通知",
                "source_url": "https://www.gov.cn/",
                "holidays": [
                    {"name": "国庆节 National Day", "start": "2026-10-01", "end": "2026-10-07"}
                ],
                "working_weekends": ["2026-09-20", "2026-10-10"],
            }
        },
    )

    source: str = Field(min_length=1, max_length=300)
    source_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://\S+$")
    holidays: list[HolidayPeriod] = Field(max_length=60)
    working_weekends: list[IsoDate] = Field(
        max_length=60, description="Saturdays and Sundays declared working days (调休上班)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> CalendarYearUpdate:
        for period in self.holidays:
            if period.end < period.start:
                raise ValueError(f"holiday {period.name!r} ends before it starts")
            if (period.end - period.start).days >= MAX_HOLIDAY_DAYS:
                raise ValueError(f"holiday {period.name!r} is longer than {MAX_HOLIDAY_DAYS} days")
        for day in self.working_weekends:
            if day.weekday() < SATURDAY:
                raise ValueError(f"{day} is a weekday: only a Saturday or Sunday can be made up")
        off = {
            period.start + timedelta(days=n)
            for period in self.holidays
            for n in range((period.end - period.start).days + 1)
        }
        both = sorted(off.intersection(self.working_weekends))
        if both:
            raise ValueError(f"{both[0]} is both a holiday and a working day")
        return self


class CalendarYear(CalendarYearUpdate):
    """A year's calendar and where it comes from."""

    model_config = ConfigDict(extra="forbid")

    year: int
    origin: str = Field(description="'packaged' (shipped with Pingtai) or 'admin' (set by PUT).")
