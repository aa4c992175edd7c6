"""The exchange's own copies of the catalogue events it keeps its read copy from.

A consumer keeps its own copy of a publisher's models (docs/events.md); unknown fields are
ignored, so the catalogue may add to its events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

_TOLERANT = ConfigDict(extra="ignore")

PUBLISHED = "pingtai.catalog.dataset.published"
RETIRED = "pingtai.catalog.dataset.retired"


class FieldDefinition(BaseModel):
    model_config = _TOLERANT

    name: str
    type: str
    description: str = ""
    sensitivity: str


class SubjectKeyDefinition(BaseModel):
    model_config = _TOLERANT

    kind: str
    field: str


class HostingDefinition(BaseModel):
    model_config = _TOLERANT

    mode: str
    endpoint_url: str | None = None


class DatasetDefinition(BaseModel):
    """The parts of a published version the exchange keeps."""

    model_config = _TOLERANT

    code: str
    owner_org_id: str
    name: str
    name_en: str | None = None
    description: str = ""
    region_code: str
    fields: list[FieldDefinition]
    subject_key: SubjectKeyDefinition
    share_type: str
    open_type: str
    not_open_reason: str | None = None
    update_frequency: str
    hosting: HostingDefinition


class CatalogDatasetPublished(BaseModel):
    """``pingtai.catalog.dataset.published``: a new immutable version."""

    model_config = _TOLERANT

    dataset_id: str
    version: int
    published_at: datetime
    definition: DatasetDefinition


class CatalogDatasetRetired(BaseModel):
    """``pingtai.catalog.dataset.retired``: the dataset was withdrawn."""

    model_config = _TOLERANT

    dataset_id: str
    last_version: int
    retired_at: datetime


def definition_fields(definition: DatasetDefinition) -> list[dict[str, Any]]:
    """The fields as the copy stores them."""
    return [f.model_dump() for f in definition.fields]
