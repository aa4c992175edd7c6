"""What the service-items API reads and writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{2,63}$"
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
ORG_ID_PATTERN = r"^[0-9a-f]{32}$"
# A form schema larger than this is refused (serialised JSON, in bytes).
MAX_FORM_BYTES = 64 * 1024


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time the catalog stores is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]

ItemKind = Literal[
    "administrative_licence",
    "administrative_confirmation",
    "public_service",
    "administrative_payment",
    "other",
]
ApplicantType = Literal["individual", "enterprise"]
ActingRole = Literal["officer", "dept_admin"]
ItemStatus = Literal["draft", "published", "retired"]


class Fee(BaseModel):
    """What the applicant pays: an amount in fen (0 = free) and what it is for."""

    model_config = _STRICT

    amount_fen: int = Field(ge=0, le=10_000_000_00)
    description: str = Field(default="", max_length=500)


class UploadSpec(BaseModel):
    """What an uploaded material may be."""

    model_config = _STRICT

    content_types: list[Annotated[str, Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$", max_length=100)]] = (
        Field(min_length=1, max_length=10)
    )
    max_bytes: int = Field(ge=1, le=100 * 1024 * 1024)


class DatasetSource(BaseModel):
    """Where the government already holds a material: a dataset, keyed by an applicant field."""

    model_config = _STRICT

    dataset_id: str = Field(min_length=1, max_length=32)
    applicant_field: str = Field(
        max_length=64, description="The form property whose value keys the dataset's record."
    )
    fields: list[Annotated[str, Field(max_length=64)]] = Field(min_length=1, max_length=100)


class Material(BaseModel):
    """A required material: uploaded by the applicant, or sourced from a dataset."""

    model_config = _STRICT

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=1000)
    source: Literal["upload", "dataset"]
    upload: UploadSpec | None = None
    dataset: DatasetSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Material:
        if self.source == "upload" and (self.upload is None or self.dataset is not None):
            raise ValueError("an uploaded material needs 'upload' and no 'dataset'")
        if self.source == "dataset" and (self.dataset is None or self.upload is not None):
            raise ValueError("a dataset-sourced material needs 'dataset' and no 'upload'")
        return self


class State(BaseModel):
    """A state of the process; ``end`` states finish it."""

    model_config = _STRICT

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    end: bool = False


class Action(BaseModel):
    """A step: from states to states, who acts (role and department) and its SLA.

    Several ``to_states`` fork parallel branches; several ``from_states`` join them (the step is
    possible once every one of them is reached). ``supplement`` marks the single step that asks
    the applicant for a supplement.
    """

    model_config = _STRICT

    key: str = Field(pattern=KEY_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    from_states: list[Annotated[str, Field(max_length=64)]] = Field(min_length=1, max_length=20)
    to_states: list[Annotated[str, Field(max_length=64)]] = Field(min_length=1, max_length=20)
    role: ActingRole
    department: str = Field(
        default="owner",
        pattern=rf"^(owner|{ORG_ID_PATTERN[1:-1]})$",
        description="'owner' (the item's department) or another department's id.",
    )
    sla_days: int = Field(ge=1, le=365, description="Working days this step may take.")
    supplement: bool = False


class ProcessTemplate(BaseModel):
    """How an application of this item proceeds: states, actions and where it starts."""

    model_config = _STRICT

    start: str = Field(max_length=64)
    states: list[State] = Field(min_length=2, max_length=50)
    actions: list[Action] = Field(min_length=1, max_length=100)


class ItemDefinition(BaseModel):
    """The editable parts of a service item."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=200, description="The name, in Chinese.")
    name_en: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=4000)
    description_en: str | None = Field(default=None, max_length=4000)
    kind: ItemKind
    applicant_types: list[ApplicantType] = Field(min_length=1, max_length=2)
    min_assurance_level: int = Field(ge=1, le=3)
    legal_time_limit_days: int = Field(ge=0, le=365)
    promised_time_limit_days: int = Field(ge=0, le=365)
    max_visits: int = Field(ge=0, le=1, description="0: fully online; 1: at most one visit.")
    fee: Fee = Field(default_factory=lambda: Fee(amount_fen=0))
    legal_basis: str = Field(default="", max_length=4000)
    region_code: str = Field(pattern=r"^\d{6}$", description="GB/T 2260 division code.")
    form: dict[str, Any] = Field(description="The application form, a JSON Schema (2020-12).")
    materials: list[Material] = Field(default_factory=list, max_length=50)
    template: ProcessTemplate

    @model_validator(mode="after")
    def _coherent(self) -> ItemDefinition:
        if self.promised_time_limit_days > self.legal_time_limit_days:
            raise ValueError("promised_time_limit_days cannot exceed legal_time_limit_days")
        if len(set(self.applicant_types)) != len(self.applicant_types):
            raise ValueError("applicant_types has duplicates")
        keys = [m.key for m in self.materials]
        if len(set(keys)) != len(keys):
            raise ValueError("materials have duplicate keys")
        return self


class ItemCreate(ItemDefinition):
    """A service item to describe; it starts as a draft."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "example": {
                "code": "zj-market-001",
                "name": "食品经营许可",
                "kind": "administrative_licence",
                "applicant_types": ["enterprise"],
                "min_assurance_level": 2,
                "legal_time_limit_days": 20,
                "promised_time_limit_days": 5,
                "max_visits": 0,
                "region_code": "330100",
                "form": {
                    "type": "object",
                    "properties": {"credit_code": {"type": "string"}},
                    "required": ["credit_code"],
                },
                "materials": [
                    {
                        "key": "licence",
                        "name": "营业执照",
                        "source": "dataset",
                        "dataset": {
                            "dataset_id": "0f3c2a9e5b8d4c1e9a7b6d5c4e3f2a1b",
                            "applicant_field": "credit_code",
                            "fields": ["entity_name"],
                        },
                    }
                ],
                "template": {
                    "start": "submitted",
                    "states": [
                        {"key": "submitted", "name": "已提交"},
                        {"key": "done", "name": "办结", "end": True},
                    ],
                    "actions": [
                        {
                            "key": "approve",
                            "name": "审批",
                            "from_states": ["submitted"],
                            "to_states": ["done"],
                            "role": "officer",
                            "sla_days": 5,
                        }
                    ],
                },
            }
        },
    )

    code: str = Field(pattern=CODE_PATTERN, description="Unique and human-readable.")
    owner_org_id: str | None = Field(
        default=None,
        pattern=ORG_ID_PATTERN,
        description="The owning department; a department admin's own when omitted.",
    )


class ItemUpdate(BaseModel):
    """Changes to an item's working copy (its draft); what is omitted stays."""

    model_config = _STRICT

    name: str | None = Field(default=None, min_length=1, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    description_en: str | None = Field(default=None, max_length=4000)
    kind: ItemKind | None = None
    applicant_types: list[ApplicantType] | None = Field(default=None, min_length=1, max_length=2)
    min_assurance_level: int | None = Field(default=None, ge=1, le=3)
    legal_time_limit_days: int | None = Field(default=None, ge=0, le=365)
    promised_time_limit_days: int | None = Field(default=None, ge=0, le=365)
    max_visits: int | None = Field(default=None, ge=0, le=1)
    fee: Fee | None = None
    legal_basis: str | None = Field(default=None, max_length=4000)
    region_code: str | None = Field(default=None, pattern=r"^\d{6}$")
    form: dict[str, Any] | None = None
    materials: list[Material] | None = Field(default=None, max_length=50)
    template: ProcessTemplate | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> ItemUpdate:
        nullable = {"name_en", "description_en"}
        for name in sorted(self.model_fields_set - nullable):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null; omit it to leave it as it is")
        return self


class ItemSnapshot(ItemDefinition):
    """A service item's full definition: what a version freezes and what events carry."""

    model_config = ConfigDict(extra="ignore")

    item_id: str
    code: str
    owner_org_id: str


class Item(ItemSnapshot):
    """A service item: its published version, or its draft for those who may see it."""

    id: str
    status: ItemStatus
    showing: Literal["published", "draft"] = Field(
        description="Whether this body is the latest published version or the working draft."
    )
    version: int | None = Field(description="The latest published version; null before any.")
    has_unpublished_changes: bool | None = Field(
        description="Whether the draft differs from the latest version; null for outsiders."
    )
    published_at: UtcDatetime | None
    retired_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class ItemSummary(BaseModel):
    """One search result: a published item, briefly."""

    id: str
    code: str
    name: str
    kind: str
    owner_org_id: str
    region_code: str
    applicant_types: list[str]
    max_visits: int
    version: int
    status: ItemStatus


class ItemVersion(BaseModel):
    """An immutable published version of a service item; applications reference it."""

    item_id: str
    version: int
    published_at: UtcDatetime
    snapshot: ItemSnapshot


SortOrder = Literal["relevance", "name", "code"]
