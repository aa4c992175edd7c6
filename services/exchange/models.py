"""The exchange part's whole schema: the base and every concept's tables."""

from __future__ import annotations

import services.exchange.access.models  # noqa: F401  (grants, consents, subjects)
from services.exchange.base import Base, event_tables
from services.exchange.datasets.models import ExchangeDataset
from services.exchange.ledger.models import LedgerCheckpoint, LedgerEntry, LedgerHead
from services.exchange.records.models import HostedRecord, HostedRecordVersion, RecordImport

__all__ = [
    "Base",
    "ExchangeDataset",
    "HostedRecord",
    "HostedRecordVersion",
    "LedgerCheckpoint",
    "LedgerEntry",
    "LedgerHead",
    "RecordImport",
    "event_tables",
]
