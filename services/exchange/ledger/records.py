"""What a caller hands the ledger (an access) and what it gets back (a receipt)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

BASIS_KINDS: Final = frozenset({"application", "consent", "statute", "open_data", "none"})
# granted: the rules allowed it and the data was read (or the subject has none); refused: the
# rules did not allow it; failed: allowed, but the source delivered nothing (a federated
# endpoint that failed, or whose answer was refused). Every value fits the column (16).
OUTCOMES: Final = frozenset({"granted", "refused", "failed"})

# The longest value each column holds (the database refuses longer ones, which would fail the
# whole batch; append refuses them first, failing only the caller that sent them).
_MAX_LENGTHS: Final = {
    "actor": 255,
    "client_id": 255,
    "actor_org_id": 255,
    "dataset_id": 255,
    "owner_org_id": 255,
    "subject_ref": 128,
    "basis_ref": 512,
    "request_id": 255,
}


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One read or refusal, as the exchange saw it; never a payload, never a raw subject key."""

    actor: str  # principal.sub of the caller (a person id or a client id)
    client_id: str  # principal.client_id
    actor_org_id: str | None  # principal.org: the organisation the caller acts for
    dataset_id: str
    owner_org_id: str | None  # the department that owns the dataset
    subject_ref: str | None  # libs/common/subjects.py SubjectRefs.ref(); None: no one subject
    fields: tuple[str, ...]  # fields returned (granted) or asked for (refused)
    purpose: str
    basis_kind: str  # "application" | "consent" | "statute" | "open_data" | "none"
    basis_ref: str | None
    outcome: str  # "granted" | "refused" | "failed"
    reason: str | None = None  # for refusals: the problem type / short reason
    request_id: str | None = None

    def check(self) -> None:
        """Raise ValueError unless the record can be stored as it is."""
        if self.basis_kind not in BASIS_KINDS:
            raise ValueError(f"basis_kind {self.basis_kind!r} is not one of {sorted(BASIS_KINDS)}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not one of {sorted(OUTCOMES)}")
        if not self.actor or not self.client_id or not self.dataset_id:
            raise ValueError("actor, client_id and dataset_id must not be empty")
        if isinstance(self.fields, str) or not all(isinstance(f, str) for f in self.fields):
            raise ValueError("fields must be a tuple of field names")
        for name, limit in _MAX_LENGTHS.items():
            value = getattr(self, name)
            if value is not None and len(value) > limit:
                raise ValueError(f"{name} is longer than {limit} characters")


@dataclass(frozen=True, slots=True)
class LedgerReceipt:
    """Where a committed entry sits in the chain."""

    position: int  # the entry's sequence number in the chain
    entry_hash: str  # hex SHA-256
