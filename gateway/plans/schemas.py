"""What clients send and receive about plans."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from libs.common.times import UtcDateTime

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)
CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,63}$"
ID_PATTERN = r"^[0-9a-f]{32}$"


class PlanCreate(BaseModel):
    """A new plan (platform admins)."""

    model_config = _STRICT

    code: str = Field(pattern=CODE_PATTERN, examples=["basic"])
    name: str = Field(min_length=1, max_length=200, examples=["基础版 Basic"])
    description: str = Field(default="", max_length=2000)
    requests_per_minute: int = Field(ge=1, le=1_000_000, examples=[60])
    requests_per_day: int = Field(ge=1, le=1_000_000_000, examples=[10_000])
    requires_token: bool = Field(
        default=False, description="Keys on it must come with a client-credentials token too."
    )
    published: bool = Field(default=True, description="Listed and open to new keys.")


class PlanUpdate(BaseModel):
    """Changes to a plan; every key on it follows at once."""

    model_config = _STRICT

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    requests_per_day: int | None = Field(default=None, ge=1, le=1_000_000_000)
    requires_token: bool | None = None
    published: bool | None = None


class Plan(BaseModel):
    """A plan: the limits of every key issued on it (each key counted on its own)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    code: str
    name: str
    description: str
    requests_per_minute: int
    requests_per_day: int
    requires_token: bool
    published: bool
    created_at: UtcDateTime
    updated_at: UtcDateTime
