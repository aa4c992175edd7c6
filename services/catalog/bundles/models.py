"""Bundles (the working copy), their immutable versions and the item versions each used."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.catalog.base import Base
from services.catalog.ids import new_id, utcnow


class Bundle(Base):
    """A one-thing bundle: its working definition (the draft) and where it stands.

    ``owner_org_id`` is a department, or null for the platform itself.
    """

    __tablename__ = "bundles"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    owner_org_id: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    published_version: Mapped[int | None] = mapped_column(Integer)
    has_unpublished_changes: Mapped[bool] = mapped_column(Boolean, default=True)
    name: Mapped[str] = mapped_column(String(200))
    # The editable fields, as the API's BundleDefinition dumps them.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The merged form, materials and items as computed at the last edit.
    merged: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BundleVersion(Base):
    """An immutable snapshot of a bundle: its merged form and the item versions it used."""

    __tablename__ = "bundle_versions"
    __table_args__ = (Index("ix_bundle_versions_listed_code", "listed", "code"),)

    bundle_id: Mapped[str] = mapped_column(
        ForeignKey("bundles.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    listed: Mapped[bool] = mapped_column(Boolean, default=True)
    code: Mapped[str] = mapped_column(String(64))
    owner_org_id: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    text_search: Mapped[str] = mapped_column(Text)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BundleVersionItem(Base):
    """Which version of which item a bundle version is made of."""

    __tablename__ = "bundle_version_items"
    __table_args__ = (
        ForeignKeyConstraint(
            ["bundle_id", "version"],
            ["bundle_versions.bundle_id", "bundle_versions.version"],
            ondelete="CASCADE",
        ),
    )

    bundle_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    item_version: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
