"""The read copy of the catalogue's published versions, kept from catalog's events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.workflow.base import Base
from services.workflow.ids import utcnow


class OfferingVersion(Base):
    """One immutable published version of a service item (``kind`` item) or a bundle (bundle).

    ``snapshot`` is the version as catalog's ``*.published`` event carries it (form, materials,
    process template, limits; for a bundle its merged form, materials and item versions).
    ``retired_at`` is set on every version of an offering catalog retired: no new applications.
    """

    __tablename__ = "offering_versions"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    offering_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_org_id: Mapped[str | None] = mapped_column(String(32))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
