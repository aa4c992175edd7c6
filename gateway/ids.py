"""Identifiers and clocks of the gateway part's own rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def new_id() -> str:
    """A new opaque row id (32 hex characters)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)
