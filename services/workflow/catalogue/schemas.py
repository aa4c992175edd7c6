"""The parts of catalog's published versions workflow reads (its own copy of their shape).

Workflow never imports the catalog part: these models read the ``snapshot`` that catalog's
``pingtai.catalog.item.published`` and ``.bundle.published`` events carry, ignoring what
workflow does not use (readers tolerate added fields).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_READ = ConfigDict(extra="ignore")


class UploadSpec(BaseModel):
    model_config = _READ

    content_types: list[str]
    max_bytes: int


class DatasetSource(BaseModel):
    model_config = _READ

    dataset_id: str
    applicant_field: str
    fields: list[str]


class Material(BaseModel):
    model_config = _READ

    key: str
    name: str
    source: str  # upload | dataset
    upload: UploadSpec | None = None
    dataset: DatasetSource | None = None
    # Only in a bundle's union of materials: the items that need it.
    item_ids: list[str] = Field(default_factory=list)


class State(BaseModel):
    model_config = _READ

    key: str
    name: str
    end: bool = False


class Action(BaseModel):
    model_config = _READ

    key: str
    name: str
    from_states: list[str]
    to_states: list[str]
    role: str
    department: str = "owner"
    sla_days: int
    supplement: bool = False


class ProcessTemplate(BaseModel):
    model_config = _READ

    start: str
    states: list[State]
    actions: list[Action]


class ItemSnapshot(BaseModel):
    """A published service item version."""

    model_config = _READ

    item_id: str
    code: str
    name: str
    owner_org_id: str
    applicant_types: list[str]
    min_assurance_level: int
    promised_time_limit_days: int
    legal_time_limit_days: int
    region_code: str | None = None
    max_visits: int | None = None
    form: dict[str, Any]
    materials: list[Material] = Field(default_factory=list)
    template: ProcessTemplate


class BundleItemRef(BaseModel):
    model_config = _READ

    item_id: str
    version: int
    code: str
    name: str
    owner_org_id: str


class FieldSource(BaseModel):
    model_config = _READ

    item_id: str
    field: str


class BundleSnapshot(BaseModel):
    """A published bundle version: its items' versions, merged form and union of materials."""

    model_config = _READ

    bundle_id: str
    code: str
    name: str
    owner_org_id: str | None
    items: list[BundleItemRef]
    merged_form: dict[str, Any]
    field_sources: dict[str, list[FieldSource]] = Field(default_factory=dict)
    materials: list[Material] = Field(default_factory=list)
