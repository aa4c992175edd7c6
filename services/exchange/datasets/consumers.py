"""The exchange keeps its copy of the catalogue from the catalogue's dataset events, and ends
the grants a change of sharing takes away."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import CloudEvent, Subscription
from services.exchange.access import grants as grants_service
from services.exchange.datasets import service as datasets_service
from services.exchange.datasets.events import (
    PUBLISHED,
    RETIRED,
    CatalogDatasetPublished,
    CatalogDatasetRetired,
)
from services.exchange.datasets.service import SharingChange

# The reasons a catalogue change gives the grants it ends (``revoke_reason`` starts with them).
REVOKED_RETIRED = "dataset-retired"
REVOKED_NOT_SHARED = "dataset-not-shared"
REVOKED_NOW_CONDITIONAL = "dataset-now-conditional"


async def follow_catalogue(session: AsyncSession, event: CloudEvent) -> None:
    """Apply a published version or a retirement to the read copy, and end the grants it
    takes away, in the same transaction."""
    change: SharingChange | None = None
    if event.type == PUBLISHED:
        change = await datasets_service.apply_published(
            session, event.data_as(CatalogDatasetPublished)
        )
    elif event.type == RETIRED:
        change = await datasets_service.apply_retired(session, event.data_as(CatalogDatasetRetired))
    if change is not None:
        await end_grants_taken_away(session, change)


async def end_grants_taken_away(session: AsyncSession, change: SharingChange) -> None:
    """Revoke the open grants a change of the catalogue no longer allows.

    - withdrawn (retired), or not shared (不予共享): every open grant, pending or granted;
    - unconditional become conditional: the grants given at once (``decided_by`` ``auto``),
      which no one at the owner judged; grants the owner approved stay.

    Other changes (conditional become unconditional, fields or hosting changed) leave grants
    as they are (docs/exchange.md, "When the catalogue changes a dataset").
    """
    dataset_id, version = change.dataset_id, change.version
    automatic_only = False
    if change.status == "retired":
        reason = (
            f"{REVOKED_RETIRED}: the catalogue withdrew dataset {dataset_id} (version {version})."
        )
    elif change.share_type == "not_shared":
        reason = (
            f"{REVOKED_NOT_SHARED}: from catalogue version {version} dataset {dataset_id} is "
            "not shared between departments (不予共享)."
        )
    elif change.share_type_before == "unconditional" and change.share_type == "conditional":
        automatic_only = True
        reason = (
            f"{REVOKED_NOW_CONDITIONAL}: from catalogue version {version} dataset {dataset_id} "
            "is shared on conditions; access given without the owner's approval ends, ask again."
        )
    else:
        return
    await grants_service.close_for_catalogue(
        session, dataset_id=dataset_id, reason=reason, automatic_only=automatic_only
    )


catalogue_datasets = Subscription(
    durable="exchange-catalogue-datasets",
    subjects=[PUBLISHED, RETIRED],
    handler=follow_catalogue,
)
