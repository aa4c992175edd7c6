"""The exchange part's whole schema: the base and every concept's tables."""

from __future__ import annotations

from services.exchange.base import Base, event_tables
from services.exchange.ledger.models import LedgerCheckpoint, LedgerEntry, LedgerHead

__all__ = [
    "Base",
    "LedgerCheckpoint",
    "LedgerEntry",
    "LedgerHead",
    "event_tables",
]
