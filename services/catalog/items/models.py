"""Service items (the working copy) and their immutable published versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.catalog.base import Base
from services.catalog.ids import new_id, utcnow


class ServiceItem(Base):
    """A department's service item: its working definition (the draft) and where it stands.

    ``status`` is ``draft`` until the first publish, then ``published``, then ``retired``. The
    working copy is the JSON ``definition``; what was published lives, frozen, in
    ``service_item_versions`` (``published_version`` names the latest one).
    """

    __tablename__ = "service_items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    owner_org_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    published_version: Mapped[int | None] = mapped_column(Integer)
    # Whether the working copy differs from the latest published version.
    has_unpublished_changes: Mapped[bool] = mapped_column(Boolean, default=True)
    name: Mapped[str] = mapped_column(String(200))
    # Every editable field, as the API's ItemDefinition dumps it.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ServiceItemVersion(Base):
    """An immutable snapshot of a service item, made when it was published.

    The columns beside ``snapshot`` copy what search filters and sorts on; ``listed`` is true
    for the latest version of an item that is published (what the public search shows).
    """

    __tablename__ = "service_item_versions"
    __table_args__ = (
        Index("ix_service_item_versions_listed_code", "listed", "code"),
        Index("ix_service_item_versions_listed_name", "listed", "name", "code"),
        Index("ix_service_item_versions_listed_owner", "listed", "owner_org_id", "code"),
        Index("ix_service_item_versions_listed_region", "listed", "region_code"),
    )

    item_id: Mapped[str] = mapped_column(
        ForeignKey("service_items.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    listed: Mapped[bool] = mapped_column(Boolean, default=True)
    code: Mapped[str] = mapped_column(String(64))
    owner_org_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    # Name, English name and description, NFKC-normalised and lower-cased, for keyword search.
    name_search: Mapped[str] = mapped_column(String(500))
    text_search: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(40))
    region_code: Mapped[str] = mapped_column(String(6))
    for_individuals: Mapped[bool] = mapped_column(Boolean)
    for_enterprises: Mapped[bool] = mapped_column(Boolean)
    max_visits: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The public view's JSON (service.public_body), made once at publish so an anonymous read
    # serves it without validating anything; NULL (older rows) falls back to building it.
    public_body: Mapped[str | None] = mapped_column(Text)


class ServiceItemTerm(Base):
    """Keyword search's index: each character and pair of adjacent characters (unigrams and
    bigrams) of a listed version's ``text_search``, with copies of the columns search filters
    and sorts on, so a search walks one term's rows in result order instead of scanning every
    version with ``LIKE '%…%'`` (Chinese has no word boundaries; substrings are what people
    type). Rows exist only for listed versions: publish writes them, unlisting deletes them.
    """

    __tablename__ = "service_item_terms"
    # On SQLite the rows live in the primary key's b-tree, so filtering one term's rows reads
    # no other page (a rowid table costs a lookup per row: ≈ 10 ms for 4,000 rows here).
    __table_args__ = {"sqlite_with_rowid": False}

    term: Mapped[str] = mapped_column(String(2), primary_key=True)
    # 0 when the term occurs in the name, 1 when only in the description (relevance order).
    in_name: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[int] = mapped_column(Integer)
    owner_org_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(40))
    region_code: Mapped[str] = mapped_column(String(6))
    for_individuals: Mapped[bool] = mapped_column(Boolean)
    for_enterprises: Mapped[bool] = mapped_column(Boolean)
    max_visits: Mapped[int] = mapped_column(Integer)
