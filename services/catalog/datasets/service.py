"""The rules of the data-resource catalogue: who may see and change a dataset, what a valid
definition is, and how publishing freezes a version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import AuthenticationRequired, Principal, Role
from libs.common.errors import FieldError, Forbidden, InvalidInput
from libs.common.events import new_event, outbox
from services.catalog import base as catalog_base
from services.catalog.datasets import repository as datasets_repository
from services.catalog.datasets.events import (
    DatasetDraftChanged,
    DatasetPublished,
    DatasetRetired,
)
from services.catalog.datasets.exceptions import (
    DatasetExists,
    DatasetIsRetired,
    DatasetNotFound,
    DatasetNotPublished,
    DatasetVersionNotFound,
    NothingToPublish,
)
from services.catalog.datasets.models import Dataset, DatasetVersion
from services.catalog.datasets.repository import DatasetFilters
from services.catalog.datasets.schemas import Dataset as DatasetView
from services.catalog.datasets.schemas import (
    DatasetCreate,
    DatasetDefinition,
    DatasetUpdate,
    definition_json,
)
from services.catalog.datasets.schemas import DatasetVersion as DatasetVersionView
from services.catalog.ids import utcnow

View = Literal["published", "draft"]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Identifiers that name a person or an enterprise are strings (GB 11643, GB 32100).
STRING_KEYED_SUBJECTS = frozenset({"resident_id", "credit_code"})
NOT_OPENABLE = frozenset({"personal", "sensitive"})


def may_manage(principal: Principal | None, *, owner_org_id: str) -> bool:
    """Platform admins, and the owner department's admins, manage a dataset."""
    return catalog_base.is_staff_of(principal, owner_org_id, Role.DEPT_ADMIN)


def working_definition(dataset: Dataset) -> DatasetDefinition:
    """The dataset's working copy (its draft) as a definition."""
    return DatasetDefinition.model_validate(
        {
            "code": dataset.code,
            "owner_org_id": dataset.owner_org_id,
            "name": dataset.name,
            "name_en": dataset.name_en,
            "description": dataset.description,
            "region_code": dataset.region_code,
            "fields": dataset.fields,
            "subject_key": {"kind": dataset.subject_kind, "field": dataset.subject_field},
            "share_type": dataset.share_type,
            "open_type": dataset.open_type,
            "not_open_reason": dataset.not_open_reason,
            "update_frequency": dataset.update_frequency,
            "hosting": {"mode": dataset.hosting, "endpoint_url": dataset.endpoint_url},
        }
    )


def to_view(
    dataset: Dataset, *, version: DatasetVersion | None, principal: Principal | None
) -> DatasetView:
    """The API's view: ``version``'s definition when given, else the working draft."""
    definition = (
        DatasetDefinition.model_validate(version.definition)
        if version is not None
        else working_definition(dataset)
    )
    insider = catalog_base.may_see_drafts(principal, dataset.owner_org_id)
    return DatasetView(
        **definition.model_dump(),
        id=dataset.id,
        status=_status(dataset.status),
        showing="published" if version is not None else "draft",
        version=dataset.published_version,
        has_unpublished_changes=dataset.has_unpublished_changes if insider else None,
        published_at=version.published_at if version is not None else None,
        retired_at=dataset.retired_at,
        created_at=dataset.created_at,
        updated_at=dataset.updated_at,
    )


def version_view(version: DatasetVersion) -> DatasetVersionView:
    """The API's view of one published version."""
    return DatasetVersionView(
        dataset_id=version.dataset_id,
        version=version.version,
        published_at=version.published_at,
        definition=DatasetDefinition.model_validate(version.definition),
    )


def _status(value: str) -> Literal["draft", "published", "retired"]:
    if value == "published":
        return "published"
    if value == "retired":
        return "retired"
    return "draft"


def _error(loc: Sequence[str | int], message: str) -> FieldError:
    return FieldError(loc=["body", *loc], msg=message, type="value_error")


def _endpoint_errors(url: str, *, allow_local_http: bool) -> list[str]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return ["is not a URL"]
    if parts.scheme not in {"https", "http"} or not host:
        return ["must be an https:// URL"]
    if parts.username is not None or parts.password is not None:
        return ["must not carry credentials"]
    if parts.scheme == "http" and not (allow_local_http and host in LOCAL_HOSTS):
        if allow_local_http:
            return ["must be https:// (http:// only to 127.0.0.1 or localhost outside production)"]
        return ["must be https://"]
    return []


def check_definition(definition: DatasetDefinition, *, allow_local_http: bool) -> None:
    """Raise a 422 listing every rule the definition breaks."""
    errors: list[FieldError] = []
    names = [f.name for f in definition.fields]
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            errors.append(_error(["fields", index, "name"], f"{name!r} is defined twice"))
        seen.add(name)
    key = definition.subject_key
    by_name = {f.name: f for f in definition.fields}
    if key.field not in by_name:
        errors.append(
            _error(["subject_key", "field"], f"{key.field!r} is not one of the dataset's fields")
        )
    elif key.kind in STRING_KEYED_SUBJECTS and by_name[key.field].type != "string":
        errors.append(
            _error(["subject_key", "field"], f"a {key.kind} subject key must be a string field")
        )
    if definition.open_type == "not_open" and not definition.not_open_reason:
        errors.append(
            _error(["not_open_reason"], "a not_open dataset needs the negative list's reason")
        )
    if definition.open_type != "not_open" and definition.not_open_reason:
        errors.append(_error(["not_open_reason"], "only a not_open dataset has a not_open_reason"))
    if definition.share_type == "not_shared" and definition.open_type != "not_open":
        errors.append(
            _error(["open_type"], "a dataset not shared between departments cannot be open")
        )
    if definition.open_type == "open":
        for index, field in enumerate(definition.fields):
            if field.sensitivity in NOT_OPENABLE:
                errors.append(
                    _error(
                        ["fields", index, "sensitivity"],
                        f"an open dataset cannot have {field.sensitivity} fields",
                    )
                )
    hosting = definition.hosting
    if hosting.mode == "federated" and not hosting.endpoint_url:
        errors.append(
            _error(["hosting", "endpoint_url"], "a federated dataset needs its endpoint URL")
        )
    if hosting.mode == "hosted" and hosting.endpoint_url:
        errors.append(_error(["hosting", "endpoint_url"], "a hosted dataset has no endpoint URL"))
    if hosting.mode == "federated" and hosting.endpoint_url:
        for message in _endpoint_errors(hosting.endpoint_url, allow_local_http=allow_local_http):
            errors.append(_error(["hosting", "endpoint_url"], message))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.loc[1:])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidInput(f"{where}: {first.msg}{more}", errors=errors)


def _apply(dataset: Dataset, definition: DatasetDefinition) -> None:
    dataset.name = definition.name
    dataset.name_en = definition.name_en
    dataset.description = definition.description
    dataset.region_code = definition.region_code
    dataset.fields = [f.model_dump(mode="json") for f in definition.fields]
    dataset.subject_kind = definition.subject_key.kind
    dataset.subject_field = definition.subject_key.field
    dataset.share_type = definition.share_type
    dataset.open_type = definition.open_type
    dataset.not_open_reason = definition.not_open_reason
    dataset.update_frequency = definition.update_frequency
    dataset.hosting = definition.hosting.mode
    dataset.endpoint_url = definition.hosting.endpoint_url


async def create(
    *,
    session: AsyncSession,
    principal: Principal,
    draft: DatasetCreate,
    allow_local_http: bool,
) -> Dataset:
    """Describe a new dataset as a draft: its department's admins, or platform admins."""
    owner = draft.owner_org_id or principal.org
    if owner is None:
        raise InvalidInput.for_field("owner_org_id", "name the department that owns the dataset")
    if not may_manage(principal, owner_org_id=owner):
        raise Forbidden("Only the department's admins and platform admins describe its datasets.")
    definition = DatasetDefinition.model_validate(
        {**draft.model_dump(exclude={"owner_org_id"}), "owner_org_id": owner}
    )
    check_definition(definition, allow_local_http=allow_local_http)
    if await datasets_repository.get_by_code(session, code=draft.code):
        raise DatasetExists(f"A dataset with code {draft.code!r} exists already.")
    now = utcnow()
    dataset = Dataset(
        code=draft.code,
        owner_org_id=owner,
        status="draft",
        has_unpublished_changes=True,
        created_at=now,
        updated_at=now,
    )
    _apply(dataset, definition)
    datasets_repository.add(session, dataset)
    await session.flush()
    await _draft_changed(
        session, dataset, principal=principal, created=True, changed=sorted(_EDITABLE)
    )
    return dataset


_EDITABLE = (
    "name",
    "name_en",
    "description",
    "region_code",
    "fields",
    "subject_key",
    "share_type",
    "open_type",
    "not_open_reason",
    "update_frequency",
    "hosting",
)


async def _draft_changed(
    session: AsyncSession,
    dataset: Dataset,
    *,
    principal: Principal,
    created: bool,
    changed: list[str],
) -> None:
    await outbox.add(
        session,
        new_event(
            DatasetDraftChanged(
                dataset_id=dataset.id,
                code=dataset.code,
                owner_org_id=dataset.owner_org_id,
                status=dataset.status,
                created=created,
                changed=changed,
                changed_by=principal.sub,
            ),
            subject=dataset.id,
        ),
    )


async def get_visible(
    *, session: AsyncSession, principal: Principal | None, dataset_id: str
) -> Dataset:
    """A dataset the caller may see: published or retired ones to all, drafts to insiders."""
    dataset = await datasets_repository.get(session, dataset_id=dataset_id)
    if dataset is None or (
        dataset.status == "draft"
        and not catalog_base.may_see_drafts(principal, dataset.owner_org_id)
    ):
        raise DatasetNotFound(f"No dataset {dataset_id}.")
    return dataset


async def read(
    *, session: AsyncSession, principal: Principal | None, dataset_id: str, view: View | None
) -> DatasetView:
    """A dataset: insiders see the draft unless they ask for the published version."""
    dataset = await get_visible(session=session, principal=principal, dataset_id=dataset_id)
    insider = catalog_base.may_see_drafts(principal, dataset.owner_org_id)
    wanted = view or ("draft" if insider else "published")
    if wanted == "draft":
        if not insider:
            raise Forbidden("Only the owner department and platform admins see a draft.")
        return to_view(dataset, version=None, principal=principal)
    version = await _latest_version(session, dataset)
    return to_view(dataset, version=version, principal=principal)


async def _latest_version(session: AsyncSession, dataset: Dataset) -> DatasetVersion:
    if dataset.published_version is None:
        raise DatasetNotPublished(f"Dataset {dataset.id} has no published version.")
    version = await datasets_repository.get_version(
        session, dataset_id=dataset.id, version=dataset.published_version
    )
    if version is None:  # pragma: no cover - published_version always names a row
        raise DatasetVersionNotFound(
            f"Dataset {dataset.id} lost version {dataset.published_version}."
        )
    return version


async def _managed(session: AsyncSession, *, principal: Principal, dataset_id: str) -> Dataset:
    dataset = await get_visible(session=session, principal=principal, dataset_id=dataset_id)
    if not may_manage(principal, owner_org_id=dataset.owner_org_id):
        raise Forbidden("Only the department's admins and platform admins change its datasets.")
    return dataset


async def update(
    *,
    session: AsyncSession,
    principal: Principal,
    dataset_id: str,
    update: DatasetUpdate,
    allow_local_http: bool,
) -> Dataset:
    """Edit a dataset's draft; its published versions stay as they are."""
    dataset = await _managed(session, principal=principal, dataset_id=dataset_id)
    if dataset.status == "retired":
        raise DatasetIsRetired(f"Dataset {dataset.id} is retired; it can no longer change.")
    before = working_definition(dataset)
    changes = update.model_dump(exclude_unset=True)
    merged = DatasetDefinition.model_validate({**before.model_dump(), **changes})
    check_definition(merged, allow_local_http=allow_local_http)
    previous, current = definition_json(before), definition_json(merged)
    changed = sorted(k for k in current if current[k] != previous[k])
    if not changed:
        return dataset
    _apply(dataset, merged)
    dataset.updated_at = utcnow()
    dataset.has_unpublished_changes = await _differs_from_published(session, dataset, current)
    await _draft_changed(session, dataset, principal=principal, created=False, changed=changed)
    await session.flush()
    return dataset


async def _differs_from_published(
    session: AsyncSession, dataset: Dataset, definition: dict[str, Any]
) -> bool:
    if dataset.published_version is None:
        return True
    latest = await _latest_version(session, dataset)
    return latest.definition != definition


async def publish(
    *, session: AsyncSession, principal: Principal, dataset_id: str
) -> tuple[Dataset, DatasetVersion]:
    """Freeze the draft as the next version and make it the published one."""
    dataset = await _managed(session, principal=principal, dataset_id=dataset_id)
    if dataset.status == "retired":
        raise DatasetIsRetired(f"Dataset {dataset.id} is retired; it cannot be published again.")
    if dataset.status == "published" and not dataset.has_unpublished_changes:
        raise NothingToPublish(
            f"Dataset {dataset.id}'s draft is version {dataset.published_version} already."
        )
    now = utcnow()
    definition = definition_json(working_definition(dataset))
    number = (dataset.published_version or 0) + 1
    version = DatasetVersion(
        dataset_id=dataset.id,
        version=number,
        code=dataset.code,
        owner_org_id=dataset.owner_org_id,
        name=dataset.name,
        name_en=dataset.name_en,
        share_type=dataset.share_type,
        open_type=dataset.open_type,
        subject_kind=dataset.subject_kind,
        definition=definition,
        published_at=now,
    )
    datasets_repository.add(session, version)
    dataset.status = "published"
    dataset.published_version = number
    dataset.has_unpublished_changes = False
    dataset.updated_at = now
    await session.flush()
    await outbox.add(
        session,
        new_event(
            DatasetPublished(
                dataset_id=dataset.id,
                code=dataset.code,
                owner_org_id=dataset.owner_org_id,
                version=number,
                published_at=now,
                definition=definition,
                published_by=principal.sub,
            ),
            subject=dataset.id,
        ),
    )
    return dataset, version


async def retire(*, session: AsyncSession, principal: Principal, dataset_id: str) -> Dataset:
    """Withdraw a published dataset; its versions stay readable for those who used them."""
    dataset = await _managed(session, principal=principal, dataset_id=dataset_id)
    if dataset.status == "retired":
        raise DatasetIsRetired(f"Dataset {dataset.id} is retired already.")
    if dataset.status != "published" or dataset.published_version is None:
        raise DatasetNotPublished(f"Dataset {dataset.id} was never published; nothing to retire.")
    now = utcnow()
    dataset.status = "retired"
    dataset.retired_at = now
    dataset.updated_at = now
    await session.flush()
    await outbox.add(
        session,
        new_event(
            DatasetRetired(
                dataset_id=dataset.id,
                code=dataset.code,
                owner_org_id=dataset.owner_org_id,
                last_version=dataset.published_version,
                retired_at=now,
                retired_by=principal.sub,
            ),
            subject=dataset.id,
        ),
    )
    return dataset


async def search(
    *,
    session: AsyncSession,
    principal: Principal | None,
    filters: DatasetFilters,
    after: str | None,
    limit: int,
) -> list[DatasetView]:
    """Published (or retired) datasets for everyone; never-published drafts for insiders."""
    if filters.status != "draft":
        rows = await datasets_repository.search_published(
            session, filters=filters, after=after, limit=limit
        )
        return [to_view(d, version=v, principal=principal) for d, v in rows]
    filters = _draft_scope(principal, filters)
    drafts = await datasets_repository.search_drafts(
        session, filters=filters, after=after, limit=limit
    )
    return [to_view(d, version=None, principal=principal) for d in drafts]


def _draft_scope(principal: Principal | None, filters: DatasetFilters) -> DatasetFilters:
    if principal is None:
        raise AuthenticationRequired(
            "Listing drafts needs a department's or a platform admin's token."
        )
    owner = catalog_base.drafts_owner(principal, filters.owner_org_id)
    return DatasetFilters(**{**filters.__dict__, "owner_org_id": owner})


async def versions(
    *,
    session: AsyncSession,
    principal: Principal | None,
    dataset_id: str,
    after: int | None,
    limit: int,
) -> Sequence[DatasetVersion]:
    """A visible dataset's published versions, oldest first."""
    dataset = await get_visible(session=session, principal=principal, dataset_id=dataset_id)
    return await datasets_repository.list_versions(
        session, dataset_id=dataset.id, after=after, limit=limit
    )


async def version(
    *, session: AsyncSession, principal: Principal | None, dataset_id: str, number: int
) -> DatasetVersion:
    """One published version of a visible dataset."""
    dataset = await get_visible(session=session, principal=principal, dataset_id=dataset_id)
    found = await datasets_repository.get_version(session, dataset_id=dataset.id, version=number)
    if found is None:
        raise DatasetVersionNotFound(f"Dataset {dataset.id} has no version {number}.")
    return found
