"""What the ledger's API returns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LedgerEntryView(BaseModel):
    """One entry of the access ledger, as stored and chained."""

    model_config = ConfigDict(from_attributes=True)

    position: int = Field(description="The entry's sequence number in the chain (1, 2, ...).")
    recorded_at: datetime
    actor: str = Field(description="Who read: a person's id or a client's id.")
    client_id: str
    actor_org_id: str | None = Field(description="The organisation the reader acted for.")
    dataset_id: str
    owner_org_id: str | None
    subject_ref: str | None = Field(description="Keyed hash of the subject's key; never the key.")
    fields: list[str]
    purpose: str
    basis_kind: Literal["application", "consent", "statute", "open_data", "none"]
    basis_ref: str | None
    outcome: Literal["granted", "refused", "failed"] = Field(
        description="granted: read (reason `not-found` when there is no record); refused: the "
        "rules did not allow it; failed: allowed, but the source delivered nothing (reason "
        "`source-failed: <problem>`)."
    )
    reason: str | None
    request_id: str | None
    prev_hash: str = Field(
        description="Hex SHA-256 of the previous entry (64 zeros for the first)."
    )
    entry_hash: str = Field(description="Hex SHA-256 of this entry's canonical encoding.")


class CheckpointView(BaseModel):
    """A signed statement of the chain's head; check it offline with the key ``key_id``."""

    model_config = ConfigDict(from_attributes=True)

    position: int
    entry_hash: str
    signed_at: datetime
    signed_at_us: int = Field(description="signed_at in microseconds since the epoch, as signed.")
    key_id: str = Field(description="The RFC 7638 thumbprint of the Ed25519 key (JWK kid).")
    signature: str = Field(description="base64url Ed25519 signature (see docs/exchange-ledger.md).")


class TamperingView(BaseModel):
    """The first place the ledger differs from what was written and signed."""

    kind: Literal["altered", "removed", "inserted", "reordered", "checkpoint"]
    position: int
    detail: str


class VerificationView(BaseModel):
    """The result of recomputing the whole chain and every checkpoint."""

    valid: bool
    entries: int
    head_position: int
    head_hash: str
    checkpoints: int
    last_checkpoint_position: int | None
    unsigned_entries: int = Field(description="Entries after the last checkpoint.")
    problem: TamperingView | None
    seconds: float
    entries_per_s: float


class PublicJwk(BaseModel):
    """An Ed25519 public key as a JWK (RFC 8037)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    use: Literal["sig"]
    alg: Literal["EdDSA"]
    pem: str = Field(description="The same key as SubjectPublicKeyInfo PEM.")
    current: bool = Field(description="Whether the exchange signs new checkpoints with it.")


class LedgerKeys(BaseModel):
    """The keys checkpoints are signed with: the current one and former ones still trusted."""

    keys: list[PublicJwk]
