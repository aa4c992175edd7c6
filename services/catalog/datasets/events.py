"""The events the data-resource catalogue publishes (exchange keeps its read copy from them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from libs.common.events import EventData


class DatasetDraftChanged(EventData):
    """A dataset's draft was created or edited; nothing published changed."""

    event_type: ClassVar[str] = "pingtai.catalog.dataset.draft_changed"

    dataset_id: str
    code: str
    owner_org_id: str
    status: str
    created: bool
    changed: list[str]
    changed_by: str


class DatasetPublished(EventData):
    """A new immutable version of a dataset, with its full definition."""

    event_type: ClassVar[str] = "pingtai.catalog.dataset.published"

    dataset_id: str
    code: str
    owner_org_id: str
    version: int
    published_at: datetime
    definition: dict[str, Any]
    published_by: str


class DatasetRetired(EventData):
    """A dataset was withdrawn; its versions stay readable."""

    event_type: ClassVar[str] = "pingtai.catalog.dataset.retired"

    dataset_id: str
    code: str
    owner_org_id: str
    last_version: int
    retired_at: datetime
    retired_by: str
