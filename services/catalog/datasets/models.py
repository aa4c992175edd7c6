"""Datasets (the working copy) and their immutable published versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.catalog.base import Base
from services.catalog.ids import new_id, utcnow


class Dataset(Base):
    """A department's data resource: its working definition (the draft) and where it stands.

    ``status`` is ``draft`` until the first publish, then ``published``, then ``retired``.
    The columns below ``status`` are the working copy; what was published lives, frozen, in
    ``dataset_versions`` (``published_version`` names the latest one).
    """

    __tablename__ = "datasets"
    __table_args__ = (Index("ix_datasets_status_code", "status", "code"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    owner_org_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    published_version: Mapped[int | None] = mapped_column(Integer)
    # Whether the working copy differs from the latest published version.
    has_unpublished_changes: Mapped[bool] = mapped_column(default=True)

    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str] = mapped_column(String(6))
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_field: Mapped[str] = mapped_column(String(64))
    share_type: Mapped[str] = mapped_column(String(16))
    open_type: Mapped[str] = mapped_column(String(16))
    not_open_reason: Mapped[str | None] = mapped_column(Text)
    update_frequency: Mapped[str] = mapped_column(String(16))
    hosting: Mapped[str] = mapped_column(String(16))
    endpoint_url: Mapped[str | None] = mapped_column(String(2048))

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DatasetVersion(Base):
    """An immutable snapshot of a dataset's definition, made when it was published.

    The columns beside ``definition`` copy the parts the public list filters on.
    """

    __tablename__ = "dataset_versions"
    __table_args__ = (
        Index("ix_dataset_versions_filters", "share_type", "open_type", "subject_kind"),
    )

    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    owner_org_id: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    share_type: Mapped[str] = mapped_column(String(16))
    open_type: Mapped[str] = mapped_column(String(16))
    subject_kind: Mapped[str] = mapped_column(String(16))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
