"""The events the access ledger publishes: metadata of the accesses, and unusual reading."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from libs.common.events import EventData

# At most this many entries in one event (about 140 KB of JSON, well under NATS's 1 MB limit);
# a larger batch is announced in several events.
MAX_ENTRIES_PER_EVENT = 200


class AccessEntry(BaseModel):
    """One ledger entry's metadata: never the record's values, never a raw subject key."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    position: int
    entry_hash: str
    recorded_at: datetime
    actor: str
    client_id: str
    actor_org_id: str | None
    dataset_id: str
    owner_org_id: str | None
    subject_ref: str | None
    fields: list[str]
    purpose: str
    basis_kind: str
    basis_ref: str | None
    outcome: str
    reason: str | None
    request_id: str | None


class AccessesRecorded(EventData):
    """Consecutive entries the ledger committed in one group commit (``first_position`` to
    ``last_position``, each in ``entries``)."""

    event_type: ClassVar[str] = "pingtai.exchange.access.batch_recorded"

    first_position: int
    last_position: int
    entries: list[AccessEntry]


class AccessAnomaly(EventData):
    """A client read far more distinct subjects in a window than its threshold allows."""

    event_type: ClassVar[str] = "pingtai.exchange.access.anomaly"

    client_id: str
    actor_org_id: str | None
    distinct_subjects: int
    window_s: float
    threshold: int
    baseline: float
    position: int  # the entry that crossed the threshold
    detected_at: datetime
