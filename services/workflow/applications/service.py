"""The rules about applications: submission, drafts, materials, withdrawal, the supplement."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.auth import InsufficientAssurance, Principal, Role
from libs.common.errors import PayloadTooLarge
from services.workflow.applications import forms, journal
from services.workflow.applications import repository as applications_repository
from services.workflow.applications.events import (
    ApplicationMaterialsRequested,
    ApplicationSubmitted,
    ApplicationWithdrawn,
    MaterialUploaded,
    SupplementProvided,
)
from services.workflow.applications.exceptions import (
    ApplicationConflict,
    ApplicationNotFound,
    IdempotencyKeyReused,
    MaterialNotFound,
    MaterialNotUploadable,
    NotEligible,
    OfferingNotFound,
    OfferingRetired,
    WrongStatus,
)
from services.workflow.applications.journal import Changes
from services.workflow.applications.models import (
    OPEN_STATUSES,
    Application,
    ApplicationMaterial,
)
from services.workflow.applications.runtime import Runtime
from services.workflow.applications.schemas import ApplicationCreate, SupplementAnswer
from services.workflow.catalogue import repository as catalogue_repository
from services.workflow.catalogue import templates
from services.workflow.catalogue.models import OfferingVersion
from services.workflow.catalogue.schemas import ItemSnapshot, Material
from services.workflow.clients.exchange import Applicant
from services.workflow.ids import new_id, utcnow
from services.workflow.materials import service as materials_service
from services.workflow.tasks import repository as tasks_repository
from services.workflow.tasks import service as tasks_service

log = structlog.get_logger("pingtai.workflow.applications")

APPLYING_ROLES = frozenset({Role.CITIZEN, Role.ENTERPRISE_AGENT})
# Where the applicant may still change materials: before the process starts, or in a supplement.
UPLOAD_STATUSES = ("draft", "submitted", "awaiting_materials", "supplement_requested")


@dataclass
class Offering:
    """A published item or bundle version as an application needs it."""

    kind: str
    offering_id: str
    version: int
    code: str
    name: str
    owner_org_id: str | None
    form: dict[str, object]
    materials: list[Material]
    items: list[tuple[ItemSnapshot, int]]
    applicant_types: set[str] = field(default_factory=set)
    min_acr: int = 1
    region_code: str | None = None
    legal_time_limit_days: int | None = None
    promised_time_limit_days: int | None = None
    max_visits: int | None = None

    @property
    def cache_key(self) -> str:
        return f"{self.kind}:{self.offering_id}:{self.version}"

    @property
    def owners(self) -> dict[str, str]:
        return {s.item_id: s.owner_org_id for s, _ in self.items}

    @property
    def item_refs(self) -> list[dict[str, Any]]:
        """The item versions covered, as an application keeps them."""
        return [{"item_id": s.item_id, "version": v, "owner_org_id": s.owner_org_id}
                for s, v in self.items]  # fmt: skip


# Published versions never change: each is resolved once per process (the retirement and
# which version is newest are read every time).
_OFFERINGS: OrderedDict[str, Offering] = OrderedDict()


async def resolve_offering(
    session: AsyncSession,
    *,
    kind: str,
    offering_id: str,
    version: int | None,
    for_new: bool,
) -> Offering:
    """A published version from the read copy: the latest when ``version`` is None."""
    header = await templates.version_header(
        session, kind=kind, offering_id=offering_id, version=version
    )
    if header is None:
        raise OfferingNotFound(f"No published {kind} {offering_id}" + (
            f" version {version}." if version else "."))  # fmt: skip
    number, retired_at = header
    key = f"{kind}:{offering_id}:{number}"
    offering = _OFFERINGS.get(key)
    if offering is None:
        row = await catalogue_repository.get(
            session, kind=kind, offering_id=offering_id, version=number
        )
        if row is None:  # removed between the two reads: as if never there
            raise OfferingNotFound(f"No published {kind} {offering_id}.")
        offering = templates.remember(_OFFERINGS, key, await _offering(session, row))
    if for_new and retired_at is not None:
        raise OfferingRetired(f"The {kind} {offering.code} is no longer offered.")
    return offering


async def _offering(session: AsyncSession, row: OfferingVersion) -> Offering:
    if row.kind == "item":
        item = templates.item_snapshot(row.offering_id, row.version, row.snapshot)
        return Offering(
            kind="item", offering_id=row.offering_id, version=row.version, code=item.code,
            name=item.name, owner_org_id=item.owner_org_id, form=item.form,
            materials=[m.model_copy(update={"item_ids": [item.item_id]}) for m in item.materials],
            items=[(item, row.version)], applicant_types=set(item.applicant_types),
            min_acr=item.min_assurance_level, region_code=item.region_code,
            legal_time_limit_days=item.legal_time_limit_days,
            promised_time_limit_days=item.promised_time_limit_days, max_visits=item.max_visits,
        )  # fmt: skip
    bundle = templates.bundle_snapshot(row.offering_id, row.version, row.snapshot)
    keys = [(ref.item_id, ref.version) for ref in bundle.items]
    snapshots = await templates.items(session, keys=keys)
    items = [(snapshots[k], k[1]) for k in keys]
    snaps = [s for s, _ in items]
    visits = [s.max_visits for s in snaps if s.max_visits is not None]
    # A bundle's applicant must be one every item accepts; its assurance, the highest asked;
    # its limits, the longest of its items'; its region, its first item's.
    accepted = set.intersection(*(set(s.applicant_types) for s in snaps))
    return Offering(
        kind="bundle", offering_id=row.offering_id, version=row.version, code=bundle.code,
        name=bundle.name, owner_org_id=bundle.owner_org_id, form=bundle.merged_form,
        materials=bundle.materials, items=items, applicant_types=accepted,
        min_acr=max(s.min_assurance_level for s in snaps), region_code=snaps[0].region_code,
        legal_time_limit_days=max(s.legal_time_limit_days for s in snaps),
        promised_time_limit_days=max(s.promised_time_limit_days for s in snaps),
        max_visits=max(visits) if visits else None,
    )  # fmt: skip


def applicant_org(principal: Principal, offering: Offering) -> str | None:
    """The enterprise an agent applies for (None for a person); 403/401 if not allowed."""
    if principal.roles.isdisjoint(APPLYING_ROLES):
        raise NotEligible("Only citizens and enterprise agents apply.")
    if principal.acr < offering.min_acr:
        raise InsufficientAssurance(offering.min_acr)
    if (
        "enterprise" in offering.applicant_types
        and principal.has_role(Role.ENTERPRISE_AGENT)
        and principal.org is not None
    ):
        return principal.org
    if "individual" in offering.applicant_types and principal.has_role(Role.CITIZEN):
        return None
    raise NotEligible(
        f"{offering.name} is for {' and '.join(sorted(offering.applicant_types))} applicants."
    )


def request_hash(draft: ApplicationCreate) -> str:
    """SHA-256 of the request body, canonical, for Idempotency-Key comparisons."""
    # The default channel is left out: keys first used before channels existed still match.
    exclude = {"channel"} if draft.channel == "online" else set()
    body = json.dumps(
        draft.model_dump(mode="json", exclude=exclude), sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class Created:
    """What ``create`` made: the application, whether it is a replay, and (for a new one) its
    materials, branches, tasks and history, which the answer is built from without reading."""

    application: Application
    replayed: bool
    changes: Changes | None = None


async def create(
    session: AsyncSession,
    *,
    principal: Principal,
    draft: ApplicationCreate,
    idempotency_key: str | None,
    runtime: Runtime,
) -> Created:
    """Save a draft or submit an application; a replayed Idempotency-Key returns the first one.

    Everything is decided in memory (exchange asked before anything is written), then written
    in one go: the application, its materials, branches, tasks, clocks, history and events.
    """
    # Kept (and so computed) only for a request with an Idempotency-Key.
    digest = request_hash(draft) if idempotency_key is not None else None
    if idempotency_key is not None:
        first = await applications_repository.by_idempotency_key(
            session, applicant_id=principal.sub, key=idempotency_key
        )
        if first is not None:
            return Created(_replay(first, digest), True)
    kind = "item" if draft.item_id else "bundle"
    offering = await resolve_offering(
        session, kind=kind, offering_id=draft.item_id or draft.bundle_id or "",
        version=draft.version, for_new=True,
    )  # fmt: skip
    org_id = applicant_org(principal, offering)
    forms.check_form(
        cache_key=offering.cache_key, schema=offering.form, form=draft.form,
        complete=not draft.draft,
    )  # fmt: skip
    at = utcnow()
    application = Application(
        id=new_id(), applicant_id=principal.sub, applicant_org_id=org_id, kind=kind,
        item_id=offering.offering_id if kind == "item" else None,
        item_version=offering.version if kind == "item" else None,
        bundle_id=offering.offering_id if kind == "bundle" else None,
        bundle_version=offering.version if kind == "bundle" else None,
        service_code=offering.code, service_name=offering.name,
        owner_org_id=offering.owner_org_id, status="draft", channel=draft.channel,
        region_code=offering.region_code, legal_time_limit_days=offering.legal_time_limit_days,
        promised_time_limit_days=offering.promised_time_limit_days,
        max_visits=offering.max_visits, items=offering.item_refs, form=draft.form,
        supplement_rounds=0, supplement=None, result=None, idempotency_key=idempotency_key,
        request_hash=digest,
        created_at=at, updated_at=at, submitted_at=None, due_at=None, decided_at=None, version=1,
    )  # fmt: skip
    materials = _plan(application, offering, runtime)
    fetched = 0
    if not draft.draft:
        # Asked before anything is written: exchange's answers come in with the application.
        fetched = await _fetch(application, materials, runtime)
    changes = Changes(materials=materials)
    changes.entries.append(journal.entry(application, action="draft_saved", at=at,
                                         principal=principal, to_status="draft"))  # fmt: skip
    if not draft.draft:
        _submitted(application, offering, materials, principal=principal, at=at,
                   fetched=fetched, changes=changes)  # fmt: skip
    if not await applications_repository.insert_new(session, application):
        # The same Idempotency-Key committed meanwhile by a concurrent request.
        first = None
        if idempotency_key is not None:
            first = await applications_repository.by_idempotency_key(
                session, applicant_id=principal.sub, key=idempotency_key
            )
        if first is None:
            raise ApplicationConflict("The application could not be stored; try again.")
        return Created(_replay(first, digest), True)
    await journal.write(session, application, changes)
    return Created(application, False, changes)


def _replay(first: Application, digest: str | None) -> Application:
    if first.request_hash != digest:
        raise IdempotencyKeyReused.for_field(
            "Idempotency-Key", "was first used with another request body", location="header"
        )
    return first


def _plan(
    application: Application, offering: Offering, runtime: Runtime
) -> list[ApplicationMaterial]:
    return materials_service.plan(
        application_id=application.id, materials=offering.materials, form=application.form,
        owners=offering.owners, default_owner=offering.owner_org_id,
        default_types=runtime.upload_types, max_bytes=runtime.upload_max_bytes,
    )  # fmt: skip


async def _fetch(
    application: Application, materials: list[ApplicationMaterial], runtime: Runtime
) -> int:
    return await materials_service.fetch(
        runtime.exchange, application_id=application.id,
        applicant=Applicant(application.applicant_id, application.applicant_org_id),
        purpose=f"{application.service_name}（办件 {application.id}）",
        materials=materials, default_types=runtime.upload_types,
        max_bytes=runtime.upload_max_bytes, max_attempts=runtime.fetch_max_attempts,
    )  # fmt: skip


def _submitted(
    application: Application,
    offering: Offering,
    materials: list[ApplicationMaterial],
    *,
    principal: Principal,
    at: datetime,
    fetched: int,
    changes: Changes,
) -> None:
    """The submission itself: status, history, events; then wherever the materials lead."""
    previous = application.status
    application.status = "submitted"
    application.submitted_at = at
    application.updated_at = at
    pending = sum(1 for m in materials if m.state == "pending_fetch")
    changes.entries.append(journal.entry(
        application, action="submitted", at=at, principal=principal, from_status=previous,
        to_status="submitted",
        data={"materials_fetched": fetched, "materials_pending_fetch": pending},
    ))  # fmt: skip
    changes.events.append(ApplicationSubmitted(
        **journal.event_base(application), materials_total=len(materials),
        materials_fetched=fetched, materials_pending=pending,
    ))  # fmt: skip
    _after_materials(application, offering, materials, at=at, changes=changes)


def _after_materials(
    application: Application,
    offering: Offering,
    materials: list[ApplicationMaterial],
    *,
    at: datetime,
    changes: Changes,
) -> None:
    """Move a submitted application on: wait for fetches, ask for uploads, or start."""
    if any(m.state == "pending_fetch" for m in materials):
        return  # the retrier fetches them
    requested = [m.key for m in materials if m.state == "requested"]
    if requested:
        if application.status != "awaiting_materials":
            previous = application.status
            application.status = "awaiting_materials"
            changes.entries.append(journal.entry(
                application, action="materials_requested", at=at, principal=None,
                from_status=previous, to_status=application.status,
                data={"materials": requested},
            ))  # fmt: skip
            changes.events.append(ApplicationMaterialsRequested(
                **journal.event_base(application), materials=requested))  # fmt: skip
        return
    changes.merge(tasks_service.start_process(
        application, items=offering.items, at=at,
        materials_fetched=sum(1 for m in materials if m.state == "fetched"),
        materials_uploaded=sum(1 for m in materials if m.state == "uploaded"),
    ))  # fmt: skip


# --- Reading ---------------------------------------------------------------------------------


def may_read(principal: Principal, application: Application) -> bool:
    """The applicant, the agents of the enterprise that applied, platform admins."""
    return _applied(principal, application) or principal.has_role(Role.PLATFORM_ADMIN)


def _applied(principal: Principal, application: Application) -> bool:
    """Whether the caller applied: the applicant, or an agent of the enterprise that applied."""
    if principal.sub == application.applicant_id:
        return True
    return (
        application.applicant_org_id is not None
        and principal.org == application.applicant_org_id
        and principal.has_role(Role.ENTERPRISE_AGENT)
    )


async def get_visible(
    session: AsyncSession, *, principal: Principal, application_id: str
) -> Application:
    """An application the caller may read: their own (or their enterprise's), or one of their
    department's when they are its officer; 404 otherwise (others' applications are not known).
    """
    application = await applications_repository.get(session, application_id=application_id)
    if application is not None and may_read(principal, application):
        return application
    if application is not None and principal.org and principal.roles & tasks_service.ACTING_ROLES:
        branches = await tasks_repository.branches(session, application_id=application.id)
        if any(b.department_org_id == principal.org for b in branches):
            return application
    raise ApplicationNotFound(f"No application {application_id} of yours.")


async def _own(
    session: AsyncSession, *, principal: Principal, application_id: str, lock: bool
) -> Application:
    """An application the caller applied for, locked for a change when ``lock``."""
    found = await applications_repository.get(session, application_id=application_id)
    if found is None or not _applied(principal, found):
        raise ApplicationNotFound(f"No application {application_id} of yours.")
    if not lock:
        return found
    locked = await applications_repository.lock(session, application_id=application_id)
    assert locked is not None
    return locked


# --- Drafts, submission, withdrawal --------------------------------------------------------


async def update_draft(
    session: AsyncSession,
    *,
    principal: Principal,
    application_id: str,
    form: dict[str, object],
    runtime: Runtime,
) -> Application:
    """Replace a draft's form (checked, but it may still miss fields)."""
    application = await _own(session, principal=principal, application_id=application_id,
                             lock=True)  # fmt: skip
    if application.status != "draft":
        raise WrongStatus(f"Only a draft can be edited; this application is {application.status}.")
    offering = await _offering_of(session, application)
    forms.check_form(cache_key=offering.cache_key, schema=offering.form, form=form, complete=False)
    application.form = form
    application.updated_at = utcnow()
    # Dataset materials are keyed by form fields: plan them again from the new form.
    for material in await applications_repository.materials(session, application_id=application.id):
        if material.source == "dataset" and material.state in ("pending_fetch", "requested"):
            await session.delete(material)
    await session.flush()
    existing = {m.key for m in await applications_repository.materials(
        session, application_id=application.id)}  # fmt: skip
    replanned = [m for m in offering.materials if m.key not in existing]
    session.add_all(materials_service.plan(
        application_id=application.id, materials=replanned, form=form, owners=offering.owners,
        default_owner=offering.owner_org_id, default_types=runtime.upload_types,
        max_bytes=runtime.upload_max_bytes,
    ))  # fmt: skip
    await session.flush()
    return application


async def _offering_of(session: AsyncSession, application: Application) -> Offering:
    if application.kind == "item":
        return await resolve_offering(session, kind="item", offering_id=application.item_id or "",
                                      version=application.item_version, for_new=False)  # fmt: skip
    return await resolve_offering(session, kind="bundle", offering_id=application.bundle_id or "",
                                  version=application.bundle_version, for_new=False)  # fmt: skip


async def submit_draft(
    session: AsyncSession, *, principal: Principal, application_id: str, runtime: Runtime
) -> Application:
    """Submit a saved draft: the form must now be complete; materials are fetched."""
    application = await _own(session, principal=principal, application_id=application_id,
                             lock=False)  # fmt: skip
    if application.status != "draft":
        raise WrongStatus(f"Only a draft can be submitted; this one is {application.status}.")
    offering = await _offering_of(session, application)
    applicant_org(principal, offering)
    forms.check_form(cache_key=offering.cache_key, schema=offering.form, form=application.form,
                     complete=True)  # fmt: skip
    materials = await applications_repository.materials(session, application_id=application.id)
    fetched = await _fetch(application, materials, runtime)
    application = await _own(session, principal=principal, application_id=application_id,
                             lock=True)  # fmt: skip
    if application.status != "draft":
        raise WrongStatus(f"Only a draft can be submitted; this one is {application.status}.")
    changes = Changes()
    _submitted(application, offering, materials, principal=principal, at=utcnow(),
               fetched=fetched, changes=changes)  # fmt: skip
    await journal.write(session, application, changes)
    await session.flush()
    return application


async def withdraw(
    session: AsyncSession, *, principal: Principal, application_id: str, reason: str | None
) -> Application:
    """Withdraw before a decision: open tasks are cancelled, clocks stopped."""
    application = await _own(session, principal=principal, application_id=application_id,
                             lock=True)  # fmt: skip
    if application.status not in ("draft", *OPEN_STATUSES):
        raise WrongStatus(f"A {application.status} application cannot be withdrawn.")
    at = utcnow()
    changes = await tasks_service.stop_process(session, application, at=at, reason="withdrawn")
    previous = application.status
    application.status = "withdrawn"
    application.updated_at = at
    application.decided_at = at
    changes.entries.append(journal.entry(
        application, action="withdrawn", at=at, principal=principal, from_status=previous,
        to_status="withdrawn", comment=reason,
    ))  # fmt: skip
    facts = journal.decision_facts(
        application, at=at,
        materials=await applications_repository.material_counts(
            session, application_id=application.id),
    )  # fmt: skip
    changes.events.append(
        ApplicationWithdrawn(**journal.event_base(application), **facts, reason=reason)
    )
    await journal.write(session, application, changes)
    await session.flush()
    return application


async def answer_supplement(
    session: AsyncSession, *, principal: Principal, application_id: str, answer: SupplementAnswer
) -> Application:
    """The applicant's answer to the one supplement request: the waiting tasks open."""
    application = await _own(session, principal=principal, application_id=application_id,
                             lock=True)  # fmt: skip
    if application.status != "supplement_requested":
        raise WrongStatus(f"No supplement is asked of this application ({application.status}).")
    offering = await _offering_of(session, application)
    form = {**application.form, **answer.form}
    forms.check_form(cache_key=offering.cache_key, schema=offering.form, form=form, complete=True)
    at = utcnow()
    application.form = form
    application.status = "in_progress"
    application.updated_at = at
    application.supplement = {**(application.supplement or {}), "answered_at": at.isoformat()}
    changes = await tasks_service.open_waiting(session, application, at=at)
    changes.entries.insert(0, journal.entry(
        application, action="supplement_provided", at=at, principal=principal,
        from_status="supplement_requested", to_status="in_progress", comment=answer.comment,
        data={"changed_fields": sorted(answer.form)},
    ))  # fmt: skip
    changes.events.insert(0, SupplementProvided(
        **journal.event_base(application), changed_fields=sorted(answer.form)))  # fmt: skip
    await journal.write(session, application, changes)
    await session.flush()
    return application


# --- Uploads ---------------------------------------------------------------------------------


async def upload(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    principal: Principal,
    application_id: str,
    key: str,
    content_type: str | None,
    file_name: str | None,
    chunks: AsyncIterator[bytes],
    runtime: Runtime,
) -> ApplicationMaterial:
    """Store an uploaded material (streamed, type- and size-checked, checksummed).

    The checks run in a short session closed before the body streams, and the result is
    written in another: a slow client holds no database connection (a body slower than
    ``upload_min_rate_bytes_s`` is cut off with a 408). The file a material had before is
    deleted once the new one is committed; a file no material took is deleted at once.
    """
    async with sessionmaker() as session:
        application = await _own(session, principal=principal, application_id=application_id,
                                 lock=False)  # fmt: skip
        materials = await applications_repository.materials(session, application_id=application.id)
    material = next((m for m in materials if m.key == key), None)
    if material is None:
        raise MaterialNotFound(f"The application asks for no material {key}.")
    _check_uploadable(application, material)
    allowed = material.allowed_types or runtime.upload_types
    media = materials_service.check_type(content_type, allowed)
    room = runtime.upload_max_bytes_per_application - _uploaded_bytes(materials, but=key)
    if room <= 0:
        raise PayloadTooLarge(_quota_message(runtime))
    limit = min(material.max_bytes or runtime.upload_max_bytes, runtime.upload_max_bytes, room)
    body = materials_service.paced(chunks, min_rate_bytes_s=runtime.upload_min_rate_bytes_s,
                                   grace_s=runtime.upload_grace_s)  # fmt: skip
    path, size, checksum = await materials_service.store(
        body, folder=runtime.uploads_dir / application.id / key, max_bytes=limit
    )
    try:
        material, replaced = await _record_upload(
            sessionmaker, principal=principal, application_id=application_id, key=key,
            media=media, file_name=file_name, path=path, size=size, checksum=checksum,
            runtime=runtime,
        )  # fmt: skip
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if replaced is not None and replaced != str(path):
        Path(replaced).unlink(missing_ok=True)
    return material


def _uploaded_bytes(materials: list[ApplicationMaterial], *, but: str) -> int:
    return sum(m.size_bytes or 0 for m in materials if m.state == "uploaded" and m.key != but)


def _quota_message(runtime: Runtime) -> str:
    return (f"The application's uploads may take at most {runtime.upload_max_bytes_per_application}"
            " bytes together.")  # fmt: skip


async def _record_upload(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    principal: Principal,
    application_id: str,
    key: str,
    media: str,
    file_name: str | None,
    path: Path,
    size: int,
    checksum: str,
    runtime: Runtime,
) -> tuple[ApplicationMaterial, str | None]:
    """Attach a stored file to its material (committed); the file it replaces, if any."""
    async with sessionmaker() as session, session.begin():
        application = await _own(session, principal=principal, application_id=application_id,
                                 lock=True)  # fmt: skip
        materials = await applications_repository.materials(session, application_id=application.id)
        material = next(m for m in materials if m.key == key)
        _check_uploadable(application, material)
        if _uploaded_bytes(materials, but=key) + size > runtime.upload_max_bytes_per_application:
            raise PayloadTooLarge(_quota_message(runtime))
        replaced = material.storage_path if material.state == "uploaded" else None
        at = utcnow()
        material.state = "uploaded"
        material.file_name = materials_service.safe_file_name(file_name, fallback=key)
        material.content_type = media
        material.size_bytes = size
        material.sha256 = checksum
        material.storage_path = str(path)
        material.uploaded_at = at
        material.last_error = None
        application.updated_at = at
        changes = Changes(
            entries=[journal.entry(
                application, action="material_uploaded", at=at, principal=principal,
                data={"material": key, "size_bytes": size, "sha256": checksum},
            )],
            events=[MaterialUploaded(
                **journal.event_base(application), material=key, content_type=media,
                size_bytes=size, sha256=checksum,
            )],
        )  # fmt: skip
        if application.status == "awaiting_materials":
            offering = await _offering_of(session, application)
            _after_materials(application, offering, materials, at=at, changes=changes)
        await journal.write(session, application, changes)
        await session.flush()
    return material, replaced


def _check_uploadable(application: Application, material: ApplicationMaterial) -> None:
    if application.status not in UPLOAD_STATUSES:
        raise WrongStatus(f"Materials cannot change while the application is {application.status}.")
    if material.state not in ("requested", "uploaded"):
        raise MaterialNotUploadable(
            f"Material {material.key} is {material.state}: the government holds it already."
        )


# --- Materials fetched later -----------------------------------------------------------------


async def retry_fetches(sessionmaker: async_sessionmaker[AsyncSession], runtime: Runtime) -> int:
    """Fetch the materials of applications accepted while exchange was away; how many moved on."""
    async with sessionmaker() as session:
        ids = await applications_repository.awaiting_fetch(session, limit=runtime.fetch_retry_batch)
    moved = 0
    for application_id in ids:
        try:
            moved += await _retry_one(sessionmaker, runtime, application_id)
        except Exception as exc:  # one application's trouble must not stop the others
            log.warning("fetch_retry_failed", application_id=application_id, error=repr(exc))
    return moved


async def _retry_one(
    sessionmaker: async_sessionmaker[AsyncSession], runtime: Runtime, application_id: str
) -> int:
    async with sessionmaker() as session:
        application = await applications_repository.get(session, application_id=application_id)
        if application is None or application.status != "submitted":
            return 0
        materials = await applications_repository.materials(session, application_id=application_id)
    fetched = await _fetch(application, materials, runtime)
    async with sessionmaker() as session, session.begin():
        locked = await applications_repository.lock(session, application_id=application_id)
        if locked is None or locked.status != "submitted":
            return 0
        current = {m.key: m for m in await applications_repository.materials(
            session, application_id=application_id)}  # fmt: skip
        for material in materials:
            row = current[material.key]
            if row.state != "pending_fetch":
                continue
            for name in ("state", "record", "receipt", "fetched_at", "fetch_attempts",
                         "last_error", "allowed_types", "max_bytes"):  # fmt: skip
                setattr(row, name, getattr(material, name))
        at = utcnow()
        locked.updated_at = at
        changes = Changes()
        if fetched:
            changes.entries.append(journal.entry(
                locked, action="materials_fetched", at=at, principal=None,
                data={"fetched": fetched},
            ))  # fmt: skip
        offering = await _offering_of(session, locked)
        _after_materials(locked, offering, list(current.values()), at=at, changes=changes)
        await journal.write(session, locked, changes)
        return 1 if locked.status != "submitted" else 0
