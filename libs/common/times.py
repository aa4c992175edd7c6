"""Times on the wire: always UTC with an offset (RFC 3339 ``date-time`` needs one)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive time is UTC (every part stores UTC, and SQLite reads back
    ``DateTime(timezone=True)`` columns naive)."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:  # a far-off offset at the edge of the calendar
        raise ValueError("time out of range") from exc


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
"""A time in UTC (pydantic writes ``2026-11-28T07:55:07.065084Z``); a naive one is read as UTC."""
