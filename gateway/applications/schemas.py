"""What clients send and receive about applications and their keys."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from libs.common.times import UtcDateTime

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)
ID_PATTERN = r"^[0-9a-f]{32}$"
ORG_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

KeyStatus = Literal["active", "expired", "revoked"]


class ApplicationCreate(BaseModel):
    """A new application of an organisation."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=200, examples=["企业开办助手 Start-up helper"])
    description: str = Field(default="", max_length=2000)
    org_id: str | None = Field(
        default=None,
        pattern=ORG_PATTERN,
        description="The owning organisation; platform admins only. Default: the caller's.",
    )
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="The OAuth client whose client-credentials tokens its keys accept, if any.",
    )


class Application(BaseModel):
    """An application that calls the platform's APIs with its keys."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    org_id: str
    name: str
    description: str
    client_id: str | None
    created_by: str
    created_at: UtcDateTime


class ApiKeyCreate(BaseModel):
    """A new key for an application, on a plan."""

    model_config = _STRICT

    plan_id: str = Field(pattern=ID_PATTERN)
    label: str = Field(default="", max_length=100, examples=["production server"])
    # JSON gives a string: parsed leniently, but it must carry a time zone.
    expires_at: AwareDatetime | None = Field(
        default=None, strict=False, description="When it stops working (ISO 8601 with a zone)."
    )


class ApiKey(BaseModel):
    """A key as its owner sees it after issue: never the key itself."""

    id: str
    application_id: str
    plan_id: str
    label: str
    hint: str = Field(description="The key's first characters, e.g. pt_live_3fQa.")
    status: KeyStatus
    created_by: str
    created_at: UtcDateTime
    expires_at: UtcDateTime | None
    revoked_at: UtcDateTime | None
    last_used_at: UtcDateTime | None = Field(description="Updated every few seconds, not per call.")


class IssuedApiKey(ApiKey):
    """A key just issued: ``key`` is shown this once and never again."""

    key: str = Field(description="Send as the X-API-Key header. Store it safely: shown once.")
