"""Periods: a year, a quarter, a month, a day, or any range of days (both ends included)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from libs.common.errors import InvalidInput

PERIOD_PATTERN = r"^\d{4}(-Q[1-4]|-\d{2}(-\d{2})?)?$"
MAX_DAYS = 3 * 366


@dataclass(frozen=True)
class Period:
    """Local calendar days from ``start`` to ``end``, both included."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def label(self) -> str:
        return self.start.isoformat() if self.start == self.end else f"{self.start}/{self.end}"


def _month_end(year: int, month: int) -> date:
    first_next = date(year + month // 12, month % 12 + 1, 1)
    return first_next - timedelta(days=1)


def parse_period(text: str) -> Period:
    """``2026``, ``2026-Q4``, ``2026-11`` or ``2026-11-28``; a 422 problem otherwise."""
    if not re.match(PERIOD_PATTERN, text):
        raise InvalidInput.for_field(
            "period", "use YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD", location="query"
        )
    try:
        if len(text) == 4:
            year = int(text)
            return Period(date(year, 1, 1), date(year, 12, 31))
        if "Q" in text:
            year, quarter = int(text[:4]), int(text[-1])
            first = 3 * quarter - 2
            return Period(date(year, first, 1), _month_end(year, first + 2))
        if len(text) == 7:
            year, month = int(text[:4]), int(text[5:7])
            return Period(date(year, month, 1), _month_end(year, month))
        day = date.fromisoformat(text)
        return Period(day, day)
    except ValueError as exc:
        raise InvalidInput.for_field("period", str(exc), location="query") from exc


def resolve(period: str | None, start: date | None, end: date | None) -> Period:
    """The period of a request: ``period``, or ``from`` and ``to``."""
    if period is not None:
        if start is not None or end is not None:
            raise InvalidInput.for_field(
                "period", "give either period or from/to, not both", location="query"
            )
        return parse_period(period)
    if start is None or end is None:
        raise InvalidInput.for_field(
            "period", "give period (e.g. 2026-11) or both from and to", location="query"
        )
    if end < start:
        raise InvalidInput.for_field("to", "must not be before from", location="query")
    found = Period(start, end)
    if found.days > MAX_DAYS:
        raise InvalidInput.for_field(
            "to", f"a range covers at most {MAX_DAYS} days", location="query"
        )
    return found


def months(period: Period) -> list[Period]:
    """The calendar months (cut to the period) that make up ``period``."""
    found = []
    cursor = period.start
    while cursor <= period.end:
        end = min(_month_end(cursor.year, cursor.month), period.end)
        found.append(Period(cursor, end))
        cursor = end + timedelta(days=1)
    return found
