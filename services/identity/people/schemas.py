"""What the people API reads and writes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from services.identity.roles import Role

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Registration(BaseModel):
    """Self-registration of a citizen (assurance level 1)."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "example": {
                "name": "张三",
                "resident_id": "330106199001011237",
                "phone": "13812345678",
                "email": "zhangsan@example.cn",
                "password": "correct horse 42",
            }
        },
    )

    name: str = Field(min_length=1, max_length=100)
    resident_id: str = Field(min_length=18, max_length=18, description="GB 11643 number.")
    phone: str = Field(min_length=11, max_length=20, description="Mainland mobile number.")
    email: EmailStr | None = None
    password: str = Field(min_length=1, max_length=256)


class RegistrationReceived(BaseModel):
    """The same answer whether or not the person already had an account (no enumeration)."""

    status: str = "received"
    detail: str = (
        "If these details are new, the account is ready: sign in with your phone number. "
        "If an account already exists, its holder has been told."
    )


class MembershipView(BaseModel):
    id: str
    org_id: str | None
    role: Role


class Person(BaseModel):
    """A person as others see them: identifiers masked unless revealed to an entitled caller."""

    id: str
    name: str
    phone: str | None
    email: str | None
    resident_id: str | None = Field(description="Masked unless the caller is entitled.")
    resident_id_revealed: bool = False
    acr: int = Field(ge=1, le=3, description="Assurance level (1, 2, 3).")
    status: str
    memberships: list[MembershipView] = Field(default_factory=list)
    created_at: datetime
    pending_email: str | None = Field(
        default=None,
        description="Your own view only: the address you asked to use, waiting for the code "
        "sent to it (POST /v1/me/email/confirmation).",
    )


class PersonUpdate(BaseModel):
    """What a person may change about themselves. A new e-mail address waits for the code sent
    to it; ``null`` removes the address at once."""

    model_config = _STRICT

    name: str | None = Field(default=None, min_length=1, max_length=100)
    email: EmailStr | None = None


class EmailConfirmation(BaseModel):
    """The code sent to the address a person asked to use."""

    model_config = _STRICT

    code: str = Field(pattern=r"^\d{6}$", description="Six digits.")


class Verification(BaseModel):
    """A real-name verification that raises a person's assurance level."""

    model_config = _STRICT

    level: int = Field(ge=2, le=3, description="2: real-name verified; 3: verified in person.")
    method: str = Field(
        min_length=1, max_length=64, description="e.g. 'public-security-check', 'in-person'."
    )
