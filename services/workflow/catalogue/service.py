"""The read copy's rules: versions recorded once from catalog's events, read by applications."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import CloudEvent, Subscription
from services.workflow.catalogue import repository as catalogue_repository
from services.workflow.catalogue import templates
from services.workflow.catalogue.events import (
    BundlePublished,
    BundleRetired,
    ItemPublished,
    ItemRetired,
)
from services.workflow.catalogue.models import OfferingVersion
from services.workflow.catalogue.schemas import BundleSnapshot, ItemSnapshot
from services.workflow.ids import utcnow


async def record_version(
    session: AsyncSession,
    *,
    kind: str,
    offering_id: str,
    version: int,
    code: str,
    name: str,
    owner_org_id: str | None,
    snapshot: dict[str, object],
) -> None:
    """Keep a published version; a version already kept stays as it is (versions are immutable)."""
    found = await catalogue_repository.get(
        session, kind=kind, offering_id=offering_id, version=version
    )
    if found is not None:
        return
    catalogue_repository.add(
        session,
        OfferingVersion(
            kind=kind, offering_id=offering_id, version=version, code=code, name=name,
            owner_org_id=owner_org_id, snapshot=snapshot,
        ),
    )  # fmt: skip
    await session.flush()


async def apply_catalog_event(session: AsyncSession, event: CloudEvent) -> None:
    """Apply one catalog event to the read copy (the consumer's handler)."""
    templates.forget_headers()
    if event.type == ItemPublished.event_type:
        item = event.data_as(ItemPublished)
        ItemSnapshot.model_validate(item.snapshot)  # refuse (dead-letter) what we cannot run
        await record_version(
            session, kind="item", offering_id=item.item_id, version=item.version,
            code=item.code, name=str(item.snapshot.get("name", item.code)),
            owner_org_id=item.owner_org_id, snapshot=item.snapshot,
        )  # fmt: skip
    elif event.type == BundlePublished.event_type:
        bundle = event.data_as(BundlePublished)
        BundleSnapshot.model_validate(bundle.snapshot)
        await record_version(
            session, kind="bundle", offering_id=bundle.bundle_id, version=bundle.version,
            code=bundle.code, name=str(bundle.snapshot.get("name", bundle.code)),
            owner_org_id=bundle.owner_org_id, snapshot=bundle.snapshot,
        )  # fmt: skip
    elif event.type == ItemRetired.event_type:
        retired = event.data_as(ItemRetired)
        await catalogue_repository.retire(
            session, kind="item", offering_id=retired.item_id, at=utcnow()
        )
    elif event.type == BundleRetired.event_type:
        gone = event.data_as(BundleRetired)
        await catalogue_repository.retire(
            session, kind="bundle", offering_id=gone.bundle_id, at=utcnow()
        )


catalogue_subscription = Subscription(
    durable="workflow-catalogue",
    subjects=[
        ItemPublished.event_type,
        ItemRetired.event_type,
        BundlePublished.event_type,
        BundleRetired.event_type,
    ],
    handler=apply_catalog_event,
)
