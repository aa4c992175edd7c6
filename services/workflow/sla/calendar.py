"""The working-day calendar (工作日历): weekdays, minus public holidays, plus make-up days (调休).

A day in Asia/Shanghai is a working day when it is Monday to Friday and not a public holiday
(法定节假日), or when it is a Saturday or Sunday the State Council declared a working day
(调休上班). Each year's holidays come from the State Council's notice (国务院办公厅关于<year>年
部分节假日安排的通知): packaged as data in ``sla/data/cn-<year>.json``, and replaceable by a
platform admin (``PUT /v1/calendar/{year}``). A year without data counts Monday to Friday only.

The counting rule (``due_after``): the day of ``start`` never counts (期间开始的当日不计入);
the deadline is the **end of the Nth working day after it**, i.e. 00:00 Asia/Shanghai of the
day after that working day. Submitted on Friday 2026-11-27 at 10:00 with 1 working day: due at
the end of Monday 2026-11-30 (2026-12-01 00:00 +08:00). ``working_days=0`` is the end of the
start day itself.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
SATURDAY = 5
# Beyond this many days of search the calendar must be broken (every day a holiday).
_MAX_SEARCH_DAYS = 3660


@dataclass(frozen=True)
class Holiday:
    """One public holiday period (放假), both ends included."""

    name: str
    start: date
    end: date


@dataclass(frozen=True)
class YearCalendar:
    """One year's official holidays and make-up working days (调休上班)."""

    year: int
    holidays: tuple[Holiday, ...]
    working_weekends: tuple[date, ...]
    source: str = ""
    source_url: str | None = None
    days_off: frozenset[date] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        days: set[date] = set()
        for holiday in self.holidays:
            day = holiday.start
            while day <= holiday.end:
                days.add(day)
                day += timedelta(days=1)
        object.__setattr__(self, "days_off", frozenset(days))

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> YearCalendar:
        """Read the JSON shape of ``sla/data/cn-<year>.json`` (already validated)."""
        return cls(
            year=int(definition["year"]),
            holidays=tuple(
                Holiday(
                    name=str(h["name"]),
                    start=date.fromisoformat(str(h["start"])),
                    end=date.fromisoformat(str(h["end"])),
                )
                for h in definition["holidays"]
            ),
            working_weekends=tuple(
                date.fromisoformat(str(d)) for d in definition["working_weekends"]
            ),
            source=str(definition.get("source") or ""),
            source_url=definition.get("source_url"),
        )

    def to_definition(self) -> dict[str, Any]:
        """The JSON shape, as stored and served."""
        return {
            "year": self.year,
            "source": self.source,
            "source_url": self.source_url,
            "holidays": [
                {"name": h.name, "start": h.start.isoformat(), "end": h.end.isoformat()}
                for h in self.holidays
            ],
            "working_weekends": [d.isoformat() for d in self.working_weekends],
        }


def packaged_years() -> dict[int, YearCalendar]:
    """The official calendars shipped with Pingtai (``sla/data/cn-<year>.json``)."""
    years: dict[int, YearCalendar] = {}
    for entry in resources.files("services.workflow.sla").joinpath("data").iterdir():
        if entry.name.startswith("cn-") and entry.name.endswith(".json"):
            year = YearCalendar.from_definition(json.loads(entry.read_text(encoding="utf-8")))
            years[year.year] = year
    return years


class HolidayCalendar:
    """Working days by year; years may be replaced while the process runs."""

    def __init__(self, years: Mapping[int, YearCalendar]) -> None:
        self._lock = threading.Lock()
        self._packaged = dict(years)
        self._set(dict(years))

    def _set(self, years: dict[int, YearCalendar]) -> None:
        # A notice may reach into the years beside its own (元旦 from 12-31, a make-up day in
        # December for January's holiday), so days are looked up across all years at once.
        days_off: set[date] = set()
        working: set[date] = set()
        for year in sorted(years):
            days_off.update(years[year].days_off)
            working.update(years[year].working_weekends)
        with self._lock:
            self._years = years
            self._days_off = frozenset(days_off)
            self._working = frozenset(working)

    def packaged_year(self, year: int) -> YearCalendar | None:
        """The calendar of ``year`` shipped with Pingtai, if any."""
        return self._packaged.get(year)

    def years(self) -> dict[int, YearCalendar]:
        """Every year known now, packaged or set by an admin."""
        return dict(self._years)

    def year(self, year: int) -> YearCalendar | None:
        """The calendar of ``year``, or None when only weekdays are known."""
        return self._years.get(year)

    def replace(self, overrides: Iterable[YearCalendar]) -> None:
        """Use the packaged years overridden by ``overrides`` (an admin's, from the database)."""
        years = dict(self._packaged)
        years.update({y.year: y for y in overrides})
        self._set(years)

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day."""
        if day in self._working:
            return True
        if day in self._days_off:
            return False
        return day.weekday() < SATURDAY

    def nth_working_day_after(self, day: date, n: int) -> date:
        """The Nth working day after ``day`` (``day`` itself never counts); ``n=0``: ``day``."""
        found = 0
        current = day
        for _ in range(_MAX_SEARCH_DAYS):
            if found == n:
                return current
            current += timedelta(days=1)
            if self.is_working_day(current):
                found += 1
        raise ValueError(f"no {n} working days within {_MAX_SEARCH_DAYS} days of {day}")

    def due_after(self, start: datetime, working_days: int) -> datetime:
        """The end of the Nth working day after ``start``'s day (Asia/Shanghai), in UTC."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if working_days < 0:
            raise ValueError("working_days must be >= 0")
        local_day = start.astimezone(SHANGHAI).date()
        last = self.nth_working_day_after(local_day, working_days)
        return datetime.combine(last + timedelta(days=1), time(), SHANGHAI).astimezone(UTC)

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days after ``start``'s day up to and including ``end``'s (Asia/Shanghai).

        0 when decided on the day of submission; the same count as ``due_after``'s, so a
        matter decided by its deadline used at most its limit.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware")
        day = start.astimezone(SHANGHAI).date()
        last = end.astimezone(SHANGHAI).date()
        count = 0
        while day < last:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count

    def working_days_before(self, moment: datetime, n: int) -> datetime:
        """The same time of day N working days before ``moment`` (Asia/Shanghai), in UTC.

        Counting back from the day of ``moment`` (which does not count): with the deadline at
        the end of Monday (Tuesday 00:00), one working day before is Monday 00:00.
        """
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        local = moment.astimezone(SHANGHAI)
        day = local.date()
        found = 0
        for _ in range(_MAX_SEARCH_DAYS):
            if found == n:
                return datetime.combine(day, local.timetz()).astimezone(UTC)
            day -= timedelta(days=1)
            if self.is_working_day(day):
                found += 1
        raise ValueError(f"no {n} working days within {_MAX_SEARCH_DAYS} days before {moment}")


# The process's calendar: the packaged years, overridden by the database's (refreshed by the
# SLA timer on every tick and at once after a PUT in this process).
CALENDAR = HolidayCalendar(packaged_years())


def due_after(start: datetime, working_days: int) -> datetime:
    """The deadline ``working_days`` working days after ``start``: end of that day, in UTC."""
    return CALENDAR.due_after(start, working_days)


def working_days_between(start: datetime, end: datetime) -> int:
    """Working days used from ``start`` to ``end`` (after the first day, up to the last)."""
    return CALENDAR.working_days_between(start, end)
