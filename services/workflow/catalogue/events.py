"""Workflow's own copies of the catalog events it reads (extra fields are ignored)."""

from __future__ import annotations

from typing import Any, ClassVar

from libs.common.events import EventData


class ItemPublished(EventData):
    event_type: ClassVar[str] = "pingtai.catalog.item.published"

    item_id: str
    code: str
    owner_org_id: str
    version: int
    snapshot: dict[str, Any]


class ItemRetired(EventData):
    event_type: ClassVar[str] = "pingtai.catalog.item.retired"

    item_id: str


class BundlePublished(EventData):
    event_type: ClassVar[str] = "pingtai.catalog.bundle.published"

    bundle_id: str
    code: str
    owner_org_id: str | None
    version: int
    snapshot: dict[str, Any]


class BundleRetired(EventData):
    event_type: ClassVar[str] = "pingtai.catalog.bundle.retired"

    bundle_id: str
