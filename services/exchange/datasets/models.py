"""The exchange's read copy of the data-resource catalogue (政务信息资源目录)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.exchange.base import Base


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DatasetField:
    """One field of a dataset's schema, as the catalogue defines it."""

    name: str
    type: str  # string, integer, number, boolean, date, datetime
    sensitivity: str  # public, internal, sensitive, personal
    description: str = ""


class ExchangeDataset(Base):
    """A catalogue dataset as its latest published (or retired) version describes it.

    Kept from the catalogue's events: a version older than the one held never overwrites it.
    ``status`` is ``published`` or ``retired``; a retired dataset keeps its records.
    """

    __tablename__ = "exchange_datasets"
    __table_args__ = (Index("ix_exchange_datasets_open_type_code", "open_type", "code"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    owner_org_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    region_code: Mapped[str] = mapped_column(String(6))
    field_definitions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    subject_key_kind: Mapped[str] = mapped_column(String(16))
    subject_key_field: Mapped[str] = mapped_column(String(64))
    share_type: Mapped[str] = mapped_column(String(16))
    open_type: Mapped[str] = mapped_column(String(16))
    not_open_reason: Mapped[str | None] = mapped_column(Text)
    update_frequency: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    endpoint_url: Mapped[str | None] = mapped_column(String(2048))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The retirement's version, kept apart so a late publish of an older version cannot revive it.
    retired_version: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def fields(self) -> list[DatasetField]:
        """The dataset's fields, in the catalogue's order.

        Built once per definition list the dataset holds (a new version assigns a new list)
        and kept on the instance: a cached dataset answers every record query."""
        definitions = self.field_definitions
        held: tuple[object, tuple[DatasetField, ...]] | None = self.__dict__.get("_fields_held")
        if held is None or held[0] is not definitions:
            built = tuple(
                DatasetField(
                    name=f["name"],
                    type=f["type"],
                    sensitivity=f["sensitivity"],
                    description=f.get("description", ""),
                )
                for f in definitions
            )
            held = (definitions, built)
            self.__dict__["_fields_held"] = held
        return list(held[1])

    def field(self, name: str) -> DatasetField | None:
        """The field called ``name``, if the dataset has one."""
        return next((f for f in self.fields if f.name == name), None)

    @property
    def is_open(self) -> bool:
        """Whether anyone may read it without a token: published and of open type."""
        return self.open_type == "open" and self.status == "published"
