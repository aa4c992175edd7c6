"""The events hosted records publish: counts and versions, never the records themselves."""

from __future__ import annotations

from typing import ClassVar

from libs.common.events import EventData


class RecordsImported(EventData):
    """An upload of records to a hosted dataset finished."""

    event_type: ClassVar[str] = "pingtai.exchange.records.imported"

    dataset_id: str
    import_id: str
    dataset_version: int
    format: str
    received: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    # The good rows (inserted, updated or unchanged): what evaluation counts as imported.
    accepted: int
    owner_org_id: str  # the dataset's owner department
    by_org_id: str | None
