"""What the access API reads and writes: grants, consents, record queries, the access history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

# Ids the exchange, catalog and identity give out; also keeps NUL bytes away from PostgreSQL.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
FIELD_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
MAX_FIELDS = 200
MAX_BATCH = 100

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time the exchange stores is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a time zone (e.g. 2027-01-01T00:00:00+08:00 or ...Z)")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
# A time a client writes: RFC 3339 with its offset (JSON strings are accepted in strict models).
WrittenTime = Annotated[datetime, Field(strict=False), AfterValidator(_aware)]
FieldName = Annotated[str, Field(pattern=FIELD_NAME_PATTERN, max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]+$")]
Reason = Annotated[str, Field(min_length=1, max_length=1000, pattern=r"^[^\x00]+$")]
Statute = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]
GrantStatus = Literal["pending", "granted", "refused", "revoked", "expired"]


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("names a field twice")
    return values


# --- Grants ------------------------------------------------------------------------------------


class GrantCreate(BaseModel):
    """A request for access to fields of a dataset, for a purpose and until a time."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "example": {
                "dataset_id": "0f3c2a9e5b8d4c1e9a7b6d5c4e3f2a1b",
                "fields": ["name", "household_address"],
                "purpose": "企业设立登记：核验法定代表人身份",
                "valid_until": "2027-12-31T23:59:59+08:00",
            }
        },
    )

    dataset_id: str = Field(pattern=ID_PATTERN)
    fields: list[FieldName] = Field(min_length=1, max_length=MAX_FIELDS)
    purpose: Text
    valid_until: WrittenTime
    requester_org_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="Platform admins only: the organisation asking; the caller's own otherwise.",
    )
    unmasked_fields: list[FieldName] = Field(
        default_factory=list,
        max_length=MAX_FIELDS,
        description="Sensitive or personal fields to receive in plain; needs the owner's approval.",
    )
    statutes: list[Statute] = Field(
        default_factory=list,
        max_length=20,
        description="Statute references this grant may cite as a basis (`statute:<ref>`); "
        "needs the owner's approval.",
    )

    _unique_fields = field_validator("fields", "unmasked_fields")(_unique)


class GrantApproval(BaseModel):
    """The owner's approval; it may shorten the period asked for."""

    model_config = _STRICT

    reason: Reason | None = None
    valid_until: WrittenTime | None = None


class GrantRefusal(BaseModel):
    model_config = _STRICT

    reason: Reason


class GrantRevocation(BaseModel):
    model_config = _STRICT

    reason: Reason | None = None


class Grant(BaseModel):
    """A grant as the requester, the owner and platform admins see it."""

    id: str
    dataset_id: str
    requester_org_id: str
    owner_org_id: str
    status: GrantStatus = Field(description="expired: granted, but valid_until has passed.")
    fields: list[str]
    unmasked_fields: list[str]
    statutes: list[str]
    purpose: str
    valid_from: UtcDatetime
    valid_until: UtcDatetime
    requested_by: str
    decided_by: str | None = Field(description="`auto` when granted at once (unconditional).")
    decided_at: UtcDatetime | None
    decision_reason: str | None
    revoked_by: str | None
    revoked_at: UtcDatetime | None
    revoke_reason: str | None
    created_at: UtcDatetime


# --- Consents ----------------------------------------------------------------------------------


class ConsentScope(BaseModel):
    """Fields of one dataset a consent covers."""

    model_config = _STRICT

    dataset_id: str = Field(pattern=ID_PATTERN)
    fields: list[FieldName] = Field(min_length=1, max_length=MAX_FIELDS)

    _unique_fields = field_validator("fields")(_unique)


class ConsentCreate(BaseModel):
    """A consent to give: to whom, for what, which data, until when."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "example": {
                "grantee_org_id": "5d1c9e0a7b3f4e2d8c6a1b0f9e8d7c6b",
                "purpose": "申请公租房：核验不动产登记信息",
                "datasets": [
                    {"dataset_id": "0f3c2a9e5b8d4c1e9a7b6d5c4e3f2a1b", "fields": ["area_sqm"]}
                ],
                "valid_until": "2027-06-30T23:59:59+08:00",
            }
        },
    )

    grantee_org_id: str = Field(pattern=ID_PATTERN)
    purpose: Text
    datasets: list[ConsentScope] = Field(min_length=1, max_length=20)
    valid_until: WrittenTime
    on_behalf_of: Literal["self", "organisation"] | None = Field(
        default=None,
        description="Whose consent: the person's own, or their enterprise's (enterprise agents; "
        "the default when acting for an enterprise).",
    )


class Consent(BaseModel):
    id: str
    subject_kind: str
    grantee_org_id: str
    grantee_name: str | None
    purpose: str
    datasets: list[ConsentScope]
    status: Literal["given", "revoked", "expired"]
    valid_from: UtcDatetime
    valid_until: UtcDatetime
    given_by: str
    revoked_by: str | None
    revoked_at: UtcDatetime | None
    created_at: UtcDatetime


# --- Queries -----------------------------------------------------------------------------------


class RecordAnswer(BaseModel):
    """One subject's record, as the grant and the basis allow."""

    dataset_id: str
    subject_key: str
    found: bool
    record: dict[str, Any] | None = Field(description="Only the granted (and asked) fields.")
    fields: list[str]
    masked_fields: list[str] = Field(description="Fields whose values are masked.")
    ledger_position: int = Field(description="The access's entry in the ledger.")


class BatchSubject(BaseModel):
    model_config = _STRICT

    subject_key: str = Field(min_length=1, max_length=64)
    basis: str | None = Field(
        default=None, max_length=300, description="This subject's basis (e.g. its consent)."
    )


class RecordBatchQuery(BaseModel):
    """Records of several subjects of one dataset, for one purpose."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "example": {
                "purpose": "退休一件事：核验参保信息",
                "basis": "application:app-20261128-0042",
                "subjects": [{"subject_key": "330106198803121234"}],
            }
        },
    )

    purpose: Text
    basis: str | None = Field(default=None, max_length=300)
    fields: list[FieldName] | None = Field(default=None, min_length=1, max_length=MAX_FIELDS)
    subjects: list[BatchSubject] = Field(min_length=1, max_length=MAX_BATCH)


class BatchResult(BaseModel):
    subject_key: str
    outcome: Literal["read", "not_found", "refused"]
    record: dict[str, Any] | None
    masked_fields: list[str]
    reason: str | None
    ledger_position: int


class RecordBatchAnswer(BaseModel):
    dataset_id: str
    fields: list[str]
    items: list[BatchResult]


# --- Who used my data --------------------------------------------------------------------------


class AccessView(BaseModel):
    """One read of (or refused attempt at) the caller's data."""

    position: int = Field(description="The entry's place in the ledger; newest first.")
    recorded_at: UtcDatetime
    organisation_id: str | None
    organisation_name: str | None
    client_id: str
    dataset_id: str
    dataset_name: str | None
    fields: list[str]
    purpose: str
    basis_kind: str
    basis_ref: str | None
    outcome: str = Field(
        description="granted (read), refused (not allowed) or failed (allowed, but the "
        "department's system delivered nothing: `reason` says why)."
    )
    reason: str | None
