"""The events bundles publish."""

from __future__ import annotations

from typing import Any, ClassVar

from libs.common.events import EventData


class BundleDraftChanged(EventData):
    """A bundle's working copy was created or edited."""

    event_type: ClassVar[str] = "pingtai.catalog.bundle.draft_changed"

    bundle_id: str
    code: str
    owner_org_id: str | None
    status: str
    changed_by: str


class BundlePublished(EventData):
    """A new immutable version of a bundle; ``snapshot`` is the whole version."""

    event_type: ClassVar[str] = "pingtai.catalog.bundle.published"

    bundle_id: str
    code: str
    owner_org_id: str | None
    version: int
    snapshot: dict[str, Any]


class BundleRetired(EventData):
    """A bundle is no longer offered; its versions stay readable."""

    event_type: ClassVar[str] = "pingtai.catalog.bundle.retired"

    bundle_id: str
    code: str
    owner_org_id: str | None
    version: int | None
