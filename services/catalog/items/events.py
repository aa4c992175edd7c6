"""The events service items publish."""

from __future__ import annotations

from typing import Any, ClassVar

from libs.common.events import EventData


class ItemDraftChanged(EventData):
    """An item's working copy was created or edited (not yet what applicants see)."""

    event_type: ClassVar[str] = "pingtai.catalog.item.draft_changed"

    item_id: str
    code: str
    owner_org_id: str
    status: str
    changed_by: str


class ItemPublished(EventData):
    """A new immutable version of an item; ``snapshot`` is the whole version."""

    event_type: ClassVar[str] = "pingtai.catalog.item.published"

    item_id: str
    code: str
    owner_org_id: str
    version: int
    snapshot: dict[str, Any]


class ItemRetired(EventData):
    """An item is no longer offered; its versions stay readable."""

    event_type: ClassVar[str] = "pingtai.catalog.item.retired"

    item_id: str
    code: str
    owner_org_id: str
    version: int | None
