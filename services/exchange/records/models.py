"""Hosted records: the current version of each subject's record, its history, and imports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.exchange.base import Base
from services.exchange.datasets.models import utcnow


class HostedRecord(Base):
    """The current version of one subject's record in a hosted dataset.

    ``data`` is the record as canonical JSON (sorted keys, no blanks), so an unchanged row is
    told by comparing text; the same text is the latest row of ``exchange_record_versions``.
    """

    __tablename__ = "exchange_records"
    # Keyed by its primary key alone on SQLite: one B-tree to write per row, not a table and
    # an index (imports write thousands of rows a second).
    __table_args__ = {"sqlite_with_rowid": False}

    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("exchange_datasets.id", ondelete="CASCADE"), primary_key=True
    )
    subject_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    data: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HostedRecordVersion(Base):
    """One version of a subject's record: every change the owner pushed, never rewritten."""

    __tablename__ = "exchange_record_versions"
    __table_args__ = {"sqlite_with_rowid": False}

    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("exchange_datasets.id", ondelete="CASCADE"), primary_key=True
    )
    subject_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[str] = mapped_column(Text)
    # The catalogue version whose schema the row was validated against.
    dataset_version: Mapped[int] = mapped_column(Integer)
    import_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecordImport(Base):
    """One upload of records: who pushed it, what it held, and how far it got."""

    __tablename__ = "exchange_record_imports"
    __table_args__ = (Index("ix_exchange_record_imports_dataset", "dataset_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("exchange_datasets.id", ondelete="CASCADE"))
    dataset_version: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    # running until the last batch commits, then completed; a running one whose process died
    # stays running: the batches it committed are kept, and the owner sends the file again.
    status: Mapped[str] = mapped_column(String(16))
    received: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    by_sub: Mapped[str] = mapped_column(String(255))
    by_client_id: Mapped[str] = mapped_column(String(255))
    by_org_id: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
