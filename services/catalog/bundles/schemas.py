"""What the bundles API reads and writes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.catalog.items.schemas import (
    CODE_PATTERN,
    KEY_PATTERN,
    ORG_ID_PATTERN,
    Material,
    UtcDatetime,
)

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

ItemId = Annotated[str, Field(min_length=1, max_length=32)]
FieldName = Annotated[str, Field(pattern=KEY_PATTERN)]


class BundleDefinition(BaseModel):
    """The editable parts of a bundle."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=4000)
    item_ids: list[ItemId] = Field(
        min_length=2, max_length=20, description="Published service items, at least two."
    )
    field_mapping: dict[ItemId, dict[str, FieldName]] = Field(
        default_factory=dict,
        description=(
            "Renames, per item, of its form's properties in the merged form: "
            '{item_id: {"property": "merged_name"}}. Use it when two items define a property '
            "of the same name differently, or to ask two differently named ones once."
        ),
    )


class BundleCreate(BundleDefinition):
    """A bundle to describe; it starts as a draft."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "example": {
                "code": "zj-open-business",
                "name": "开办企业一件事",
                "item_ids": ["<licence item id>", "<seal item id>"],
            }
        },
    )

    code: str = Field(pattern=CODE_PATTERN)
    owner_org_id: str | None = Field(
        default=None,
        pattern=ORG_ID_PATTERN,
        description=(
            "The owning department; omitted: a department admin's own department, "
            "or the platform itself for platform admins."
        ),
    )


class BundleUpdate(BaseModel):
    """Changes to a bundle's working copy; what is omitted stays."""

    model_config = _STRICT

    name: str | None = Field(default=None, min_length=1, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    item_ids: list[ItemId] | None = Field(default=None, min_length=2, max_length=20)
    field_mapping: dict[ItemId, dict[str, FieldName]] | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> BundleUpdate:
        for name in sorted(self.model_fields_set - {"name_en"}):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null; omit it to leave it as it is")
        return self


class BundleItemRef(BaseModel):
    """An item version a bundle is made of."""

    item_id: str
    version: int
    code: str
    name: str
    owner_org_id: str


class FieldSource(BaseModel):
    """Which item's form property a merged form property feeds."""

    item_id: str
    field: str


class MergedMaterial(Material):
    """A material of the union, with the items that need it."""

    model_config = ConfigDict(extra="ignore")

    item_ids: list[str]


class BundleMerge(BaseModel):
    """What the catalog computes from a bundle's items."""

    items: list[BundleItemRef]
    merged_form: dict[str, Any] = Field(description="One JSON Schema (2020-12) for all items.")
    field_sources: dict[str, list[FieldSource]]
    materials: list[MergedMaterial]


class BundleSnapshot(BundleDefinition, BundleMerge):
    """A bundle's full definition and merge: what a version freezes and events carry."""

    model_config = ConfigDict(extra="ignore")

    bundle_id: str
    code: str
    owner_org_id: str | None


class Bundle(BundleSnapshot):
    """A bundle: its published version, or its draft for those who may see it."""

    id: str
    status: Literal["draft", "published", "retired"]
    showing: Literal["published", "draft"]
    version: int | None
    has_unpublished_changes: bool | None
    published_at: UtcDatetime | None
    retired_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class BundleSummary(BaseModel):
    """One search result: a published bundle, briefly."""

    id: str
    code: str
    name: str
    owner_org_id: str | None
    version: int
    item_ids: list[str]


class BundleVersion(BaseModel):
    """An immutable published version of a bundle."""

    bundle_id: str
    version: int
    published_at: UtcDatetime
    snapshot: BundleSnapshot
