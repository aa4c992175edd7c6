"""What the open-data API shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.exchange.datasets.schemas import DatasetFieldView


class OpenDataset(BaseModel):
    """An open dataset: what anyone may know of it."""

    id: str
    code: str
    version: int
    owner_org_id: str
    name: str
    name_en: str | None
    description: str
    region_code: str
    update_frequency: str
    fields: list[DatasetFieldView] = Field(description="Its public fields: what open data serves.")
    records_url: str
    csv_url: str
    published_at: datetime


class OpenRecordPage(BaseModel):
    """One page of an open dataset's records."""

    fields: list[str]
    items: list[dict[str, Any]]
    next_cursor: str | None = None
