"""Days, working days and ids as evaluation counts them.

Days are local calendar days in the configured time zone (Asia/Shanghai by default): an
application finished at 23:30 UTC on 1 May counts on 2 May. Working days are Monday to Friday;
when workflow says how many working days an application used (its own holiday calendar), that
figure is taken instead.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


def new_id() -> str:
    """A new opaque row id (32 hex characters)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC time (SQLite hands back naive datetimes; all we store is UTC)."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


@lru_cache(maxsize=8)
def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``."""
    return ZoneInfo(name)


def local_day(value: datetime, tz: str) -> date:
    """The calendar day of ``value`` in the time zone ``tz``."""
    return as_utc(value).astimezone(zone(tz)).date()


def working_days_between(start: date, end: date) -> int:
    """Working days (Mon-Fri) after ``start`` up to and including ``end``; 0 on the same day."""
    if end <= start:
        return 0
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    weekday = start.weekday()
    for offset in range(1, rest + 1):
        if (weekday + offset) % 7 < 5:
            count += 1
    return count


def add_working_days(value: datetime, days: int, tz: str) -> datetime:
    """``value`` moved forward by ``days`` working days, at the end of that local day (UTC)."""
    day = local_day(value, tz)
    added = 0
    while added < days:
        day += timedelta(days=1)
        if day.weekday() < 5:
            added += 1
    end_of_day = datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=zone(tz))
    return end_of_day.astimezone(UTC)
