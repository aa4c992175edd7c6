"""What an application's owner reads about its usage."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class DayUsage(BaseModel):
    """One UTC day of one application (all its keys)."""

    day: date
    calls: int
    errors: int = Field(description="Answers with status 400 or more, refusals included.")
    rejected: int = Field(description="Refused with 429: over a rate limit or the daily quota.")


class KeyQuota(BaseModel):
    """Where one active key stands today, counted across every gateway replica."""

    key_id: str
    hint: str
    plan_code: str
    requests_per_minute: int
    requests_per_day: int
    used_today: int
    quota_left_today: int


class UsageReport(BaseModel):
    """Calls, errors and quota left of an application; the last few seconds may be missing
    from ``days`` (written in batches), never from ``keys`` (the live counters)."""

    application_id: str
    days: list[DayUsage]
    keys: list[KeyQuota]
