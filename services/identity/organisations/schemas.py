"""What the organisations API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.identity.roles import Role

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)

OrganisationKind = Literal["department", "enterprise"]


class OrganisationCreate(BaseModel):
    """A department or enterprise to register."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "example": {
                "kind": "department",
                "name": "杭州市市场监督管理局",
                "name_en": "Hangzhou Administration for Market Regulation",
                "region_code": "330100",
                "credit_code": "11330100002482154K",
            }
        },
    )

    kind: OrganisationKind
    name: str = Field(min_length=1, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    region_code: str = Field(pattern=r"^\d{6}$", description="GB/T 2260 division code.")
    credit_code: str = Field(min_length=18, max_length=18, description="GB 32100 code.")


class OrganisationUpdate(BaseModel):
    model_config = _STRICT

    name: str | None = Field(default=None, min_length=1, max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    status: Literal["active", "suspended"] | None = None


class Organisation(BaseModel):
    id: str
    kind: OrganisationKind
    name: str
    name_en: str | None
    region_code: str
    region_name: str | None
    credit_code: str = Field(description="Masked unless the caller acts for the organisation.")
    status: str
    created_at: datetime


class MembershipCreate(BaseModel):
    """Give a person a role, in an organisation or (``org_id`` null) platform-wide.

    The person is named by ``user_id`` or by their exact ``resident_id`` (one of the two). A
    department admin (or an enterprise agent) names by ``user_id`` only people who already
    belong to their organisation; anyone else by the resident id number they were given.
    """

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "example": {"resident_id": "330106199001011237", "org_id": "…", "role": "officer"}
        },
    )

    user_id: str | None = Field(default=None, min_length=1, max_length=32)
    resident_id: str | None = Field(
        default=None, min_length=18, max_length=18, description="GB 11643 number, exact."
    )
    org_id: str | None = Field(default=None, max_length=32)
    role: Role

    @model_validator(mode="after")
    def _one_person(self) -> MembershipCreate:
        if (self.user_id is None) == (self.resident_id is None):
            raise ValueError("name the person by user_id or by resident_id, not both or neither")
        return self


class Membership(BaseModel):
    id: str
    user_id: str
    org_id: str | None
    role: Role
    created_at: datetime


class Region(BaseModel):
    code: str
    name: str
    name_en: str
    level: str
    parent_code: str | None


class RegionTree(Region):
    children: list[RegionTree] = Field(default_factory=list)
