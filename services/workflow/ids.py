"""Identifiers and clocks of the workflow part's own rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def new_id() -> str:
    """A new opaque row id (32 hex characters)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC time (SQLite hands back naive datetimes; all we store is UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
