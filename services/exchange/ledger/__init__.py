"""The access ledger (访问留痕): every read and refusal, hash-chained, with signed checkpoints.

Callers build an ``AccessRecord`` and ``await ledger.append(record)`` (``LedgerDep`` in an
endpoint) before they answer; the receipt comes back once the entry is committed. See
docs/exchange-ledger.md.
"""

from services.exchange.ledger.models import LedgerCheckpoint, LedgerEntry, LedgerHead
from services.exchange.ledger.records import AccessRecord, LedgerReceipt
from services.exchange.ledger.setup import LedgerDep, ledger_lifespan
from services.exchange.ledger.writer import Ledger, LedgerConfig, LedgerUnavailable

__all__ = [
    "AccessRecord",
    "Ledger",
    "LedgerCheckpoint",
    "LedgerConfig",
    "LedgerDep",
    "LedgerEntry",
    "LedgerHead",
    "LedgerReceipt",
    "LedgerUnavailable",
    "ledger_lifespan",
]
