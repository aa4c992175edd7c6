"""The rules about bundles: items that are published, the merge, drafts and versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, Role
from libs.common.errors import FieldError, Forbidden, InvalidInput
from libs.common.events import new_event, outbox
from services.catalog import base as catalog_base
from services.catalog import repository as catalog_repository
from services.catalog.bundles import merge as bundle_merge
from services.catalog.bundles import repository as bundles_repository
from services.catalog.bundles.events import BundleDraftChanged, BundlePublished
from services.catalog.bundles.events import BundleRetired as BundleRetiredEvent
from services.catalog.bundles.exceptions import (
    BundleExists,
    BundleNotFound,
    BundleRetired,
    BundleVersionNotFound,
    NothingToPublish,
)
from services.catalog.bundles.models import Bundle, BundleVersion, BundleVersionItem
from services.catalog.bundles.schemas import Bundle as BundleView
from services.catalog.bundles.schemas import (
    BundleCreate,
    BundleDefinition,
    BundleMerge,
    BundleSnapshot,
    BundleSummary,
    BundleUpdate,
)
from services.catalog.bundles.schemas import BundleVersion as BundleVersionView
from services.catalog.ids import utcnow
from services.catalog.items import service as items_service
from services.catalog.items.schemas import ItemSnapshot

_DEFINITION_FIELDS = set(BundleDefinition.model_fields)


def _ensure_manages(principal: Principal, owner_org_id: str | None) -> None:
    if not items_service.may_manage(principal, owner_org_id):
        raise Forbidden(
            "Only the owning department's admins and platform admins manage this bundle."
        )


async def compute(*, session: AsyncSession, definition: BundleDefinition) -> BundleMerge:
    """The merge of a bundle's items' latest published versions; 422 when one is not usable."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, item_id in enumerate(definition.item_ids):
        if item_id in seen:
            errors.append(FieldError(loc=["body", "item_ids", i], type="value_error",
                                     msg=f"item {item_id} is listed twice"))  # fmt: skip
        seen.add(item_id)
    versions = await items_service.published_versions(session=session, item_ids=list(seen))
    for i, item_id in enumerate(definition.item_ids):
        if item_id not in versions:
            errors.append(FieldError(loc=["body", "item_ids", i], type="value_error",
                                     msg=f"no published service item {item_id} (bundles hold "
                                         "published items only, not other bundles)"))  # fmt: skip
    if errors:
        raise InvalidInput(
            "The bundle's items are not usable: " + "; ".join(e.msg for e in errors[:5]),
            errors=errors,
        )
    items = [
        (ItemSnapshot.model_validate(versions[i].snapshot, strict=False), versions[i].version)
        for i in definition.item_ids
    ]
    return bundle_merge.merge(
        name=definition.name, items=items, field_mapping=definition.field_mapping
    )


async def _draft_changed(session: AsyncSession, bundle: Bundle, principal: Principal) -> None:
    await outbox.add(
        session,
        new_event(
            BundleDraftChanged(
                bundle_id=bundle.id, code=bundle.code, owner_org_id=bundle.owner_org_id,
                status=bundle.status, changed_by=principal.sub,
            ),
            subject=bundle.id,
        ),
    )  # fmt: skip


async def create(*, session: AsyncSession, principal: Principal, draft: BundleCreate) -> Bundle:
    """Describe a new bundle, as a draft of a department or of the platform."""
    owner = draft.owner_org_id
    if owner is None and not principal.has_role(Role.PLATFORM_ADMIN):
        owner = principal.org
    _ensure_manages(principal, owner)
    definition = BundleDefinition.model_validate(draft.model_dump(include=_DEFINITION_FIELDS))
    merged = await compute(session=session, definition=definition)
    if await bundles_repository.get_by_code(session, code=draft.code):
        raise BundleExists(f"A bundle with code {draft.code} exists already.")
    bundle = Bundle(
        code=draft.code, owner_org_id=owner, status="draft", has_unpublished_changes=True,
        name=definition.name, definition=definition.model_dump(mode="json"),
        merged=merged.model_dump(mode="json"),
    )  # fmt: skip
    bundles_repository.add(session, bundle)
    await session.flush()
    await _draft_changed(session, bundle, principal)
    return bundle


async def get(*, session: AsyncSession, bundle_id: str) -> Bundle:
    """A bundle, or a not-found problem."""
    bundle = await bundles_repository.get(session, bundle_id=bundle_id)
    if bundle is None:
        raise BundleNotFound(f"No bundle {bundle_id}.")
    return bundle


async def update(
    *, session: AsyncSession, principal: Principal, bundle_id: str, update: BundleUpdate
) -> Bundle:
    """Edit a bundle's working copy; its published version stays meanwhile."""
    bundle = await get(session=session, bundle_id=bundle_id)
    _ensure_manages(principal, bundle.owner_org_id)
    if bundle.status == "retired":
        raise BundleRetired("A retired bundle cannot change.")
    merged_input = {**bundle.definition, **update.model_dump(mode="json", exclude_unset=True)}
    try:
        definition = BundleDefinition.model_validate(merged_input, strict=False)
    except ValidationError as exc:
        errors = [
            FieldError(loc=["body", *e["loc"]], msg=e["msg"], type=e["type"]) for e in exc.errors()
        ]
        raise InvalidInput("The edited bundle is not valid.", errors=errors) from exc
    merged = await compute(session=session, definition=definition)
    bundle.definition = definition.model_dump(mode="json")
    bundle.merged = merged.model_dump(mode="json")
    bundle.name = definition.name
    bundle.has_unpublished_changes = True
    bundle.updated_at = utcnow()
    await session.flush()
    await _draft_changed(session, bundle, principal)
    return bundle


def _snapshot(bundle: Bundle, merged: dict[str, Any]) -> BundleSnapshot:
    return BundleSnapshot.model_validate(
        {**bundle.definition, **merged, "bundle_id": bundle.id, "code": bundle.code,
         "owner_org_id": bundle.owner_org_id},
        strict=False,
    )  # fmt: skip


async def publish(*, session: AsyncSession, principal: Principal, bundle_id: str) -> BundleVersion:
    """Merge the items' current versions again and freeze the result as the next version."""
    bundle = await get(session=session, bundle_id=bundle_id)
    _ensure_manages(principal, bundle.owner_org_id)
    if bundle.status == "retired":
        raise BundleRetired("A retired bundle cannot be published again.")
    definition = BundleDefinition.model_validate(bundle.definition, strict=False)
    merged = (await compute(session=session, definition=definition)).model_dump(mode="json")
    if not bundle.has_unpublished_changes and merged == bundle.merged:
        raise NothingToPublish("Neither the bundle nor its items changed since the last version.")
    bundle.merged = merged
    snapshot = _snapshot(bundle, merged)
    number = (bundle.published_version or 0) + 1
    await bundles_repository.unlist(session, bundle_id=bundle.id)
    version = BundleVersion(
        bundle_id=bundle.id, version=number, listed=True, code=bundle.code,
        owner_org_id=bundle.owner_org_id, name=snapshot.name,
        text_search=items_service.normalise(
            f"{snapshot.name} {snapshot.name_en or ''} {snapshot.description}"
        ),
        snapshot=snapshot.model_dump(mode="json"), published_at=utcnow(),
    )  # fmt: skip
    bundles_repository.add(session, version)
    await session.flush()
    for position, ref in enumerate(snapshot.items):
        bundles_repository.add(
            session,
            BundleVersionItem(bundle_id=bundle.id, version=number, item_id=ref.item_id,
                              item_version=ref.version, position=position),
        )  # fmt: skip
    await catalog_base.mark_published(
        session, bundle, version=number, at=version.published_at,
        event=new_event(
            BundlePublished(
                bundle_id=bundle.id, code=bundle.code, owner_org_id=bundle.owner_org_id,
                version=number, snapshot=version.snapshot,
            ),
            subject=bundle.id,
        ),
    )  # fmt: skip
    return version


async def retire(*, session: AsyncSession, principal: Principal, bundle_id: str) -> Bundle:
    """Stop offering a bundle: it leaves search; its versions stay readable."""
    bundle = await get(session=session, bundle_id=bundle_id)
    _ensure_manages(principal, bundle.owner_org_id)
    if bundle.status == "retired":
        return bundle
    await bundles_repository.unlist(session, bundle_id=bundle.id)
    await catalog_base.mark_retired(
        session, bundle,
        event=new_event(
            BundleRetiredEvent(
                bundle_id=bundle.id, code=bundle.code, owner_org_id=bundle.owner_org_id,
                version=bundle.published_version,
            ),
            subject=bundle.id,
        ),
    )  # fmt: skip
    return bundle


async def view(*, session: AsyncSession, principal: Principal | None, bundle: Bundle) -> BundleView:
    """The draft for those who may see it, else the latest published version."""
    extra: dict[str, Any] = {
        "id": bundle.id,
        "status": bundle.status, "version": bundle.published_version,
        "retired_at": bundle.retired_at, "created_at": bundle.created_at,
        "updated_at": bundle.updated_at,
    }  # fmt: skip
    if catalog_base.may_see_drafts(principal, bundle.owner_org_id):
        snapshot = _snapshot(bundle, bundle.merged)
        return BundleView.model_validate(
            {**snapshot.model_dump(), **extra, "showing": "draft", "published_at": None,
             "has_unpublished_changes": bundle.has_unpublished_changes},
        )  # fmt: skip
    if bundle.published_version is None:
        raise BundleNotFound(f"No bundle {bundle.id}.")
    version = await get_version(session=session, bundle_id=bundle.id,
                                version=bundle.published_version)  # fmt: skip
    return BundleView.model_validate(
        {**version.snapshot, **extra, "showing": "published",
         "published_at": version.published_at, "has_unpublished_changes": None},
        strict=False,
    )  # fmt: skip


async def get_version(*, session: AsyncSession, bundle_id: str, version: int) -> BundleVersion:
    """One published version of a bundle."""
    found = await bundles_repository.get_version(session, bundle_id=bundle_id, version=version)
    if found is None:
        raise BundleVersionNotFound(f"Bundle {bundle_id} has no version {version}.")
    return found


async def list_versions(
    *, session: AsyncSession, bundle_id: str, after: int | None, limit: int
) -> Sequence[BundleVersion]:
    """A bundle's versions, oldest first."""
    await get(session=session, bundle_id=bundle_id)
    return await bundles_repository.list_versions(
        session, bundle_id=bundle_id, after=after, limit=limit
    )


def version_view(version: BundleVersion) -> BundleVersionView:
    """The API's view of a bundle version."""
    return BundleVersionView(
        bundle_id=version.bundle_id, version=version.version, published_at=version.published_at,
        snapshot=BundleSnapshot.model_validate(version.snapshot, strict=False),
    )  # fmt: skip


def summary(version: BundleVersion) -> BundleSummary:
    """A search result."""
    return BundleSummary(
        id=version.bundle_id, code=version.code, name=version.name,
        owner_org_id=version.owner_org_id, version=version.version,
        item_ids=list(version.snapshot.get("item_ids", [])),
    )  # fmt: skip


async def search(
    *,
    session: AsyncSession,
    keyword: str | None,
    code: str | None,
    owner_org_id: str | None,
    item_id: str | None,
    after: str | None,
    limit: int,
) -> Sequence[BundleVersion]:
    """Published bundles, in code order."""
    normalised = items_service.normalise(keyword).strip() if keyword else None
    return await bundles_repository.search_published(
        session, keyword=normalised or None, code=code, owner_org_id=owner_org_id,
        item_id=item_id, after=after, limit=limit,
    )  # fmt: skip


async def listed_item_ids(*, session: AsyncSession, bundle_id: str) -> Sequence[str]:
    """The items of a bundle's published version (none when it is not published)."""
    await get(session=session, bundle_id=bundle_id)
    return await bundles_repository.listed_item_ids(session, bundle_id=bundle_id)


async def drafts(
    *,
    session: AsyncSession,
    principal: Principal,
    owner_org_id: str | None,
    after: str | None,
    limit: int,
) -> Sequence[Bundle]:
    """Bundles with unpublished changes: a department's own, or any for platform admins
    (the platform's own bundles, of no department, are theirs only)."""
    return await catalog_repository.search_drafts(
        session, Bundle, owner_org_id=catalog_base.drafts_owner(principal, owner_org_id),
        after=after, limit=limit,
    )  # fmt: skip
