"""What the exchange's dataset API shows: its copy of the catalogue."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"


class DatasetFieldView(BaseModel):
    name: str
    type: str
    description: str
    sensitivity: Literal["public", "internal", "sensitive", "personal"]


class SubjectKeyView(BaseModel):
    kind: Literal["resident_id", "credit_code", "other"]
    field: str


class ExchangeDatasetView(BaseModel):
    """A dataset as the exchange knows it from the catalogue's latest version."""

    id: str
    code: str
    version: int = Field(description="The catalogue version this copy follows.")
    owner_org_id: str
    name: str
    name_en: str | None
    description: str
    region_code: str
    fields: list[DatasetFieldView]
    subject_key: SubjectKeyView
    share_type: Literal["unconditional", "conditional", "not_shared"]
    open_type: Literal["open", "conditional", "not_open"]
    not_open_reason: str | None
    update_frequency: str
    mode: Literal["hosted", "federated"]
    endpoint_url: str | None = Field(
        description="A federated dataset's endpoint: shown to its department and platform admins."
    )
    status: Literal["published", "retired"]
    published_at: datetime
    retired_at: datetime | None
