"""What the data-resource catalogue API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)
# Ids the catalog and identity give out; also keeps NUL bytes away from PostgreSQL.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"

CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{2,63}$"
FIELD_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"

FieldType = Literal["string", "integer", "number", "boolean", "date", "datetime"]
Sensitivity = Literal["public", "internal", "sensitive", "personal"]
SubjectKind = Literal["resident_id", "credit_code", "other"]
ShareType = Literal["unconditional", "conditional", "not_shared"]
OpenType = Literal["open", "conditional", "not_open"]
UpdateFrequency = Literal[
    "realtime", "daily", "weekly", "monthly", "quarterly", "yearly", "irregular"
]
HostingMode = Literal["hosted", "federated"]
DatasetStatus = Literal["draft", "published", "retired"]


class _Written(BaseModel):
    """A model a client writes: no text may carry a NUL byte (PostgreSQL refuses them)."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class DatasetField(_Written):
    """One field of a dataset's schema."""

    model_config = _STRICT

    name: str = Field(pattern=FIELD_NAME_PATTERN, max_length=64)
    type: FieldType
    description: str = Field(default="", max_length=500)
    sensitivity: Sensitivity


class SubjectKey(_Written):
    """Whom a record is about: the kind of identifier and the field that holds it."""

    model_config = _STRICT

    kind: SubjectKind
    field: str = Field(pattern=FIELD_NAME_PATTERN, max_length=64)


class Hosting(_Written):
    """Where the data lives: hosted by the platform, or federated at the department's endpoint."""

    model_config = _STRICT

    mode: HostingMode
    endpoint_url: str | None = Field(default=None, min_length=1, max_length=2048)


class _Definition(_Written):
    """The editable parts of a dataset's definition."""

    name: str = Field(min_length=1, max_length=200, description="The name, in Chinese.")
    name_en: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=4000)
    region_code: str = Field(pattern=r"^\d{6}$", description="GB/T 2260 division code.")
    fields: list[DatasetField] = Field(min_length=1, max_length=200)
    subject_key: SubjectKey
    share_type: ShareType
    open_type: OpenType
    not_open_reason: str | None = Field(
        default=None,
        max_length=1000,
        description="Why the data is not open (the negative list's reason); needed when not_open.",
    )
    update_frequency: UpdateFrequency
    hosting: Hosting


class DatasetCreate(_Definition):
    """A dataset to describe; it starts as a draft."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "example": {
                "code": "zj-legal-entity",
                "name": "法人基础信息",
                "name_en": "Legal entity registration",
                "owner_org_id": "0f3c2a9e5b8d4c1e9a7b6d5c4e3f2a1b",
                "region_code": "330000",
                "fields": [
                    {"name": "credit_code", "type": "string", "sensitivity": "public"},
                    {"name": "entity_name", "type": "string", "sensitivity": "public"},
                ],
                "subject_key": {"kind": "credit_code", "field": "credit_code"},
                "share_type": "unconditional",
                "open_type": "open",
                "update_frequency": "daily",
                "hosting": {"mode": "hosted"},
            }
        },
    )

    code: str = Field(pattern=CODE_PATTERN, description="Unique and human-readable.")
    owner_org_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="The owning department; a department admin's own when omitted.",
    )


_REQUIRED_ON_UPDATE = frozenset(
    {
        "name",
        "description",
        "region_code",
        "fields",
        "subject_key",
        "share_type",
        "open_type",
        "update_frequency",
        "hosting",
    }
)


class DatasetUpdate(_Written):
    """Changes to a dataset's working copy (its draft); what is omitted stays."""

    model_config = _STRICT

    name: str | None = Field(default=None, min_length=1, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    region_code: str | None = Field(default=None, pattern=r"^\d{6}$")
    fields: list[DatasetField] | None = Field(default=None, min_length=1, max_length=200)
    subject_key: SubjectKey | None = None
    share_type: ShareType | None = None
    open_type: OpenType | None = None
    not_open_reason: str | None = Field(default=None, max_length=1000)
    update_frequency: UpdateFrequency | None = None
    hosting: Hosting | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> DatasetUpdate:
        for name in sorted(self.model_fields_set & _REQUIRED_ON_UPDATE):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null; omit it to leave it as it is")
        return self


class DatasetDefinition(_Definition):
    """A dataset's full definition: what a version freezes and what events carry."""

    code: str
    owner_org_id: str


class Dataset(DatasetDefinition):
    """A dataset: its published definition, or its draft for those who may see it."""

    id: str
    status: DatasetStatus
    showing: Literal["published", "draft"] = Field(
        description="Whether this body is the latest published version or the working draft."
    )
    version: int | None = Field(description="The latest published version; null before any.")
    has_unpublished_changes: bool | None = Field(
        description="Whether the draft differs from the latest version; null for outsiders."
    )
    published_at: datetime | None
    retired_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DatasetVersion(BaseModel):
    """An immutable published version of a dataset."""

    dataset_id: str
    version: int
    published_at: datetime
    definition: DatasetDefinition


def definition_json(definition: DatasetDefinition) -> dict[str, Any]:
    """A definition as the JSON a version stores and an event carries."""
    return definition.model_dump(mode="json")
