"""The rules of the exchange's read copy of the catalogue: how events change it, who sees what,
and what a subject key is."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, Role
from libs.common.errors import InvalidInput
from libs.common.identifiers import (
    InvalidIdentifier,
    normalise_credit_code,
    normalise_resident_id,
)
from services.exchange.datasets import repository as datasets_repository
from services.exchange.datasets.events import (
    CatalogDatasetPublished,
    CatalogDatasetRetired,
    definition_fields,
)
from services.exchange.datasets.exceptions import DatasetNotFound
from services.exchange.datasets.models import ExchangeDataset, utcnow

SUBJECT_KEY_MAX_LENGTH = 64


@dataclass(frozen=True, slots=True)
class SharingChange:
    """What an applied catalogue event changed about sharing: the copy's share type before
    (None for a dataset new to the exchange) and after, its status after, and its version."""

    dataset_id: str
    version: int
    share_type_before: str | None
    share_type: str
    status: str


class RetirementBeforePublication(RuntimeError):
    """A retirement arrived before any version: raised so the event is delivered again later."""


async def get_dataset(session: AsyncSession, dataset_id: str) -> ExchangeDataset | None:
    """The exchange's copy of a catalogue dataset, whatever its status."""
    return await datasets_repository.get(session, dataset_id=dataset_id)


def check_subject_key(kind: str, raw: str) -> str:
    """The canonical form of a subject key of ``kind``; ``ValueError`` when malformed."""
    if kind == "resident_id":
        return normalise_resident_id(raw)
    if kind == "credit_code":
        return normalise_credit_code(raw)
    key = unicodedata.normalize("NFKC", raw).strip()
    if not key:
        raise InvalidIdentifier("a subject key cannot be empty")
    if len(key) > SUBJECT_KEY_MAX_LENGTH:
        raise InvalidIdentifier(f"a subject key has at most {SUBJECT_KEY_MAX_LENGTH} characters")
    if not key.isprintable():
        raise InvalidIdentifier("a subject key cannot hold control characters")
    return key


def normalise_subject_key(dataset: ExchangeDataset, raw: str) -> str:
    """The canonical form of ``raw`` as a key of ``dataset``; a 422 problem when malformed."""
    try:
        return check_subject_key(dataset.subject_key_kind, raw)
    except ValueError as error:
        raise InvalidInput.for_field("subject_key", str(error), location="path") from None


def may_manage_records(principal: Principal, dataset: ExchangeDataset) -> bool:
    """The owner department's admins and officers (or its system), and platform admins."""
    if principal.has_role(Role.PLATFORM_ADMIN):
        return True
    if principal.org != dataset.owner_org_id:
        return False
    return (
        principal.has_role(Role.DEPT_ADMIN)
        or principal.has_role(Role.OFFICER)
        or principal.has_scope("exchange:records:write")
    )


def may_see_endpoint(principal: Principal | None, dataset: ExchangeDataset) -> bool:
    """A federated endpoint's address is shown to its department and platform admins only."""
    return principal is not None and principal.acts_for(dataset.owner_org_id)


async def visible(
    *, session: AsyncSession, principal: Principal | None, dataset_id: str
) -> ExchangeDataset:
    """A dataset the caller may see: any to a signed-in caller, open ones to everyone.

    Anyone else gets the same 404 as for an id that does not exist.
    """
    dataset = await get_dataset(session, dataset_id)
    if dataset is None or (principal is None and not dataset.is_open):
        raise DatasetNotFound(f"No dataset {dataset_id}.")
    return dataset


async def search(
    *,
    session: AsyncSession,
    principal: Principal | None,
    open_only: bool,
    owner_org_id: str | None,
    status: str | None,
    after: str | None,
    limit: int,
) -> Sequence[ExchangeDataset]:
    """Datasets the caller may see, in code order."""
    return await datasets_repository.search(
        session,
        open_only=open_only or principal is None,
        owner_org_id=owner_org_id,
        status=status,
        after=after,
        limit=limit,
    )


async def apply_published(
    session: AsyncSession, event: CatalogDatasetPublished
) -> SharingChange | None:
    """Copy a published version, unless the copy already holds this version or a later one
    (then None: nothing changed)."""
    dataset = await datasets_repository.get_for_update(session, dataset_id=event.dataset_id)
    if dataset is not None and dataset.version >= event.version:
        return None
    share_type_before = dataset.share_type if dataset is not None else None
    if dataset is None:
        dataset = ExchangeDataset(id=event.dataset_id, retired_version=None, retired_at=None)
        datasets_repository.add(session, dataset)
    definition = event.definition
    dataset.code = definition.code
    dataset.version = event.version
    dataset.owner_org_id = definition.owner_org_id
    dataset.name = definition.name
    dataset.name_en = definition.name_en
    dataset.description = definition.description
    dataset.region_code = definition.region_code
    dataset.field_definitions = definition_fields(definition)
    dataset.subject_key_kind = definition.subject_key.kind
    dataset.subject_key_field = definition.subject_key.field
    dataset.share_type = definition.share_type
    dataset.open_type = definition.open_type
    dataset.not_open_reason = definition.not_open_reason
    dataset.update_frequency = definition.update_frequency
    dataset.mode = definition.hosting.mode
    dataset.endpoint_url = definition.hosting.endpoint_url
    dataset.published_at = event.published_at
    # A retirement that arrived before this (older) version still stands.
    retired = dataset.retired_version is not None and dataset.retired_version >= event.version
    dataset.status = "retired" if retired else "published"
    dataset.updated_at = utcnow()
    await session.flush()
    return SharingChange(
        dataset_id=dataset.id,
        version=dataset.version,
        share_type_before=share_type_before,
        share_type=dataset.share_type,
        status=dataset.status,
    )


async def apply_retired(
    session: AsyncSession, event: CatalogDatasetRetired
) -> SharingChange | None:
    """Mark the copy retired; its records stay, and no later event revives it (None when the
    retirement was applied already)."""
    dataset = await datasets_repository.get_for_update(session, dataset_id=event.dataset_id)
    if dataset is None:
        raise RetirementBeforePublication(
            f"dataset {event.dataset_id} retired before any version reached the exchange"
        )
    if dataset.retired_version is not None and dataset.retired_version >= event.last_version:
        return None
    dataset.retired_version = event.last_version
    dataset.retired_at = event.retired_at
    dataset.status = "retired"
    dataset.updated_at = utcnow()
    await session.flush()
    return SharingChange(
        dataset_id=dataset.id,
        version=event.last_version,
        share_type_before=dataset.share_type,
        share_type=dataset.share_type,
        status="retired",
    )
