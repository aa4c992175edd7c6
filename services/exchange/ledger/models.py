"""The ledger's tables: the hash-chained entries, the chain head (the lock) and checkpoints."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from services.exchange.base import Base
from services.exchange.ledger.chain import compact_json

# SQLite only makes a column INTEGER PRIMARY KEY (a rowid alias) when declared INTEGER.
_Position = BigInteger().with_variant(Integer(), "sqlite")

ENTRY_TABLE = "exchange_ledger_entry"
HEAD_TABLE = "exchange_ledger_head"
CHECKPOINT_TABLE = "exchange_ledger_checkpoint"


class UtcMicros(TypeDecorator[datetime]):
    """A UTC instant stored as integer microseconds since the epoch.

    The same value on every backend, hashed as stored, and read back without parsing text
    (SQLite has no timestamp type; verification reads the integer itself).
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        return None if value is None else to_micros(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else from_micros(int(value))


class FieldList(TypeDecorator[tuple[str, ...]]):
    """A tuple of field names stored as a compact JSON array (the text that is hashed)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else encode_fields(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[str, ...] | None:
        return None if value is None else tuple(json.loads(value))


def to_micros(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (naive ones are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The UTC datetime of microseconds since the epoch."""
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


def encode_fields(fields: Any) -> str:
    """The stored (and hashed) form of a list of field names: a compact JSON array."""
    return compact_json(list(fields))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LedgerEntry(Base):
    """One access (a read or a refusal), chained to its predecessor by ``prev_hash``.

    Rows are written only by the ledger's writer, never updated. ``position`` is the entry's
    sequence number (1, 2, ...); "who used my data" lists by ``subject_ref`` newest first with
    ``position`` as the cursor.
    """

    __tablename__ = ENTRY_TABLE

    position: Mapped[int] = mapped_column(_Position, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime] = mapped_column(UtcMicros, nullable=False)
    actor: Mapped[str] = mapped_column(String(255), nullable=False)
    client_id: Mapped[str] = mapped_column(String(255), nullable=False)
    actor_org_id: Mapped[str | None] = mapped_column(String(255))
    dataset_id: Mapped[str] = mapped_column(String(255), nullable=False)
    owner_org_id: Mapped[str | None] = mapped_column(String(255))
    subject_ref: Mapped[str | None] = mapped_column(String(128))
    fields: Mapped[tuple[str, ...]] = mapped_column(FieldList, nullable=False)
    purpose: Mapped[str] = mapped_column(Text, nullable=False)
    basis_kind: Mapped[str] = mapped_column(String(32), nullable=False)
    basis_ref: Mapped[str | None] = mapped_column(String(512))
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(255))
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    entry_hash: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (
        # Each leads with the filter and ends with the cursor, so a page is one index range.
        Index(f"ix_{ENTRY_TABLE}_subject_ref_position", "subject_ref", "position"),
        Index(f"ix_{ENTRY_TABLE}_actor_org_id_position", "actor_org_id", "position"),
        Index(f"ix_{ENTRY_TABLE}_dataset_id_position", "dataset_id", "position"),
        Index(f"ix_{ENTRY_TABLE}_recorded_at", "recorded_at"),
    )


class LedgerHead(Base):
    """The one row naming the chain's last entry; locking it serialises appends across replicas."""

    __tablename__ = HEAD_TABLE

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger, nullable=False)
    entry_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    last_checkpoint_position: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_checkpoint_at: Mapped[datetime | None] = mapped_column(UtcMicros)


class LedgerCheckpoint(Base):
    """The chain's head at ``position``, signed with the exchange's Ed25519 key ``key_id``."""

    __tablename__ = CHECKPOINT_TABLE

    position: Mapped[int] = mapped_column(_Position, primary_key=True, autoincrement=False)
    entry_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    signed_at: Mapped[datetime] = mapped_column(UtcMicros, nullable=False)
    key_id: Mapped[str] = mapped_column(String(64), nullable=False)
    # base64url without padding of the 64-byte Ed25519 signature.
    signature: Mapped[str] = mapped_column(String(128), nullable=False)
