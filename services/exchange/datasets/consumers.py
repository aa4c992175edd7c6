"""The exchange keeps its copy of the catalogue from the catalogue's dataset events."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import CloudEvent, Subscription
from services.exchange.datasets import service as datasets_service
from services.exchange.datasets.events import (
    PUBLISHED,
    RETIRED,
    CatalogDatasetPublished,
    CatalogDatasetRetired,
)


async def follow_catalogue(session: AsyncSession, event: CloudEvent) -> None:
    """Apply a published version or a retirement to the read copy."""
    if event.type == PUBLISHED:
        await datasets_service.apply_published(session, event.data_as(CatalogDatasetPublished))
    elif event.type == RETIRED:
        await datasets_service.apply_retired(session, event.data_as(CatalogDatasetRetired))


catalogue_datasets = Subscription(
    durable="exchange-catalogue-datasets",
    subjects=[PUBLISHED, RETIRED],
    handler=follow_catalogue,
)
