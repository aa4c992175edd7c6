"""The working-day calendar: the 2026 State Council notice and the counting rule."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from services.workflow.sla import due_after, working_days_between
from services.workflow.sla.calendar import (
    CALENDAR,
    SHANGHAI,
    HolidayCalendar,
    YearCalendar,
    packaged_years,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def test_the_2026_notice_is_packaged() -> None:
    year = packaged_years()[2026]
    assert len(year.holidays) == 7
    # 春节: 2月15日至23日 (9 days); 国庆: 10月1日至7日 (7 days).
    assert {date(2026, 2, d) for d in range(15, 24)} <= year.days_off
    assert {date(2026, 10, d) for d in range(1, 8)} <= year.days_off
    assert len(year.days_off) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert set(year.working_weekends) == {
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    }


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 11, 27), True),  # a Friday
        (date(2026, 11, 28), False),  # a Saturday
        (date(2026, 10, 1), False),  # 国庆节, a Thursday
        (date(2026, 10, 10), True),  # 调休: a Saturday worked
        (date(2026, 9, 20), True),  # 调休: a Sunday worked
        (date(2026, 2, 23), False),  # the last day of 春节, a Monday
        (date(2026, 5, 5), False),  # 劳动节, a Tuesday
        (date(2027, 1, 4), True),  # no 2027 data: Monday to Friday
    ],
)
def test_working_days(day: date, working: bool) -> None:
    assert CALENDAR.is_working_day(day) is working


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        # The start day never counts; due at the end of the Nth working day (00:00 next day).
        ("2026-11-27T10:00", 1, "2026-12-01T00:00"),  # Fri -> end of Mon
        ("2026-11-27T23:59", 0, "2026-11-28T00:00"),  # 0: the end of the start day
        ("2026-11-30T00:00", 5, "2026-12-08T00:00"),  # Mon -> end of next Mon
        ("2026-09-30T10:00", 1, "2026-10-09T00:00"),  # 国庆 skipped -> end of Thu 10-08
        ("2026-09-30T10:00", 2, "2026-10-10T00:00"),  # Fri 10-09
        ("2026-09-30T10:00", 3, "2026-10-11T00:00"),  # Sat 10-10 is a working day
        ("2026-02-13T10:00", 1, "2026-02-15T00:00"),  # Sat 02-14 is a working day
        ("2026-02-13T10:00", 2, "2026-02-25T00:00"),  # 春节 skipped -> Tue 02-24
        ("2026-12-31T10:00", 1, "2027-01-02T00:00"),  # into 2027: weekdays only
    ],
)
def test_due_after(start: str, days: int, due: str) -> None:
    assert due_after(at(start), days) == at(due)


def test_due_after_is_utc_and_refuses_naive_times() -> None:
    due = due_after(at("2026-11-27T10:00"), 1)
    assert due.utcoffset() is not None and due.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert due.isoformat() == "2026-11-30T16:00:00+00:00"
    with pytest.raises(ValueError, match="timezone-aware"):
        due_after(datetime(2026, 11, 27, 10), 1)
    with pytest.raises(ValueError, match=">= 0"):
        due_after(at("2026-11-27T10:00"), -1)


def test_a_submission_late_in_the_utc_day_counts_from_shanghai_s_date() -> None:
    # 2026-11-27T17:00Z is Saturday 01:00 in Shanghai: Monday is the first working day.
    start = datetime.fromisoformat("2026-11-27T17:00:00+00:00")
    assert due_after(start, 1) == at("2026-12-01T00:00")


def test_working_days_before_a_deadline() -> None:
    # Due at the end of Mon 10-12 (Tue 00:00); back over Sat 10-10 (调休) and 国庆 10-01..07.
    assert CALENDAR.working_days_before(at("2026-10-13T00:00"), 1) == at("2026-10-12T00:00")
    assert CALENDAR.working_days_before(at("2026-10-13T00:00"), 2) == at("2026-10-10T00:00")
    assert CALENDAR.working_days_before(at("2026-10-13T00:00"), 4) == at("2026-10-08T00:00")
    assert CALENDAR.working_days_before(at("2026-10-13T00:00"), 5) == at("2026-09-30T00:00")


def test_an_admin_year_replaces_the_packaged_one_and_may_reach_into_the_next() -> None:
    calendar = HolidayCalendar(packaged_years())
    calendar.replace(
        [
            YearCalendar.from_definition(
                {
                    "year": 2027,
                    "source": "test",
                    "holidays": [{"name": "元旦", "start": "2026-12-31", "end": "2027-01-01"}],
                    "working_weekends": ["2027-01-02"],
                }
            )
        ]
    )
    assert not calendar.is_working_day(date(2026, 12, 31))
    assert calendar.is_working_day(date(2027, 1, 2))
    assert not calendar.is_working_day(date(2026, 10, 1))  # 2026 still packaged
    calendar.replace([])
    assert calendar.is_working_day(date(2026, 12, 31))


@pytest.mark.parametrize(
    ("start", "end", "used"),
    [
        ("2026-11-27T10:00", "2026-11-27T18:00", 0),  # decided the same day
        ("2026-11-27T10:00", "2026-11-30T09:00", 1),  # Fri -> Mon: the weekend does not count
        ("2026-09-30T10:00", "2026-10-10T09:00", 3),  # 国庆 off; Thu, Fri, and Sat 10-10 worked
        ("2026-02-13T10:00", "2026-02-24T12:00", 2),  # Sat 02-14 worked, 春节 off, Tue 02-24
    ],
)
def test_working_days_used_is_the_count_due_after_makes(start: str, end: str, used: int) -> None:
    assert working_days_between(at(start), at(end)) == used
    # Decided before the deadline of ``used`` working days, never after it.
    assert at(end) < due_after(at(start), used)
