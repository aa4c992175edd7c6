"""The events the access ledger publishes: metadata of each access, and unusual reading."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from libs.common.events import EventData


class AccessRecorded(EventData):
    """An access was appended to the ledger (metadata only: never the record's values)."""

    event_type: ClassVar[str] = "pingtai.exchange.access.recorded"

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
