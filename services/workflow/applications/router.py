"""The applications API (办件): submit once, drafts, materials, withdrawal, the supplement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal
from libs.common.database import SessionDep
from libs.common.pagination import TIME_TEXT_CURSOR, Page, PageDep, encode_cursor
from services.workflow.applications import repository as applications_repository
from services.workflow.applications import service as applications_service
from services.workflow.applications import views
from services.workflow.applications.runtime import RuntimeDep
from services.workflow.applications.schemas import (
    Application,
    ApplicationCreate,
    ApplicationStatus,
    ApplicationSummary,
    ApplicationUpdate,
    Material,
    SupplementAnswer,
    Withdrawal,
)

router = APIRouter(tags=["applications"], responses=AUTH_RESPONSES)

ApplicationId = Annotated[str, Path(max_length=32, pattern=r"^[0-9a-f]{1,32}$")]
MaterialKey = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", min_length=1, max_length=255,
        description="A retried submission with the same key and body returns the first result.",
    ),
]  # fmt: skip


@router.post(
    "/applications", status_code=status.HTTP_201_CREATED,
    summary="Apply once: submit (or save as a draft) an application for an item or a bundle",
    description=(
        "The form is checked against the item's JSON Schema (a bundle's merged form); each bad "
        "field is named in the 422 problem. Materials the government holds are fetched from "
        "exchange with this application as legal basis; the others are asked as uploads "
        "(status `awaiting_materials`). A replayed `Idempotency-Key` returns the first result "
        "(`Idempotent-Replayed: true`); the same key with another body is a 422 problem."
    ),
)  # fmt: skip
async def create_application(
    draft: ApplicationCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Application:
    made = await applications_service.create(
        session, principal=principal, draft=draft, idempotency_key=idempotency_key,
        runtime=runtime,
    )  # fmt: skip
    response.headers["Location"] = f"/v1/applications/{made.application.id}"
    if made.replayed or made.changes is None:
        response.headers["Idempotent-Replayed"] = "true"
        return await views.full(session, made.application)
    return views.created(made.application, made.changes)


@router.get("/applications", summary="Your applications (an agent's: also the enterprise's)")
async def list_applications(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    status_filter: Annotated[ApplicationStatus | None, Query(alias="status")] = None,
) -> Page[ApplicationSummary]:
    found = await applications_repository.list_for_applicant(
        session, applicant_id=principal.sub,
        org_id=principal.org if "enterprise_agent" in principal.roles else None,
        status=status_filter, after=page.position(TIME_TEXT_CURSOR),
        limit=page.limit,
    )  # fmt: skip
    next_cursor = None
    if len(found) == page.limit:
        last = found[-1]
        next_cursor = encode_cursor([last.created_at.isoformat(), last.id])
    return Page[ApplicationSummary](
        items=[views.summary(a) for a in found], next_cursor=next_cursor
    )


@router.get(
    "/applications/{application_id}",
    summary="One application with its materials, branches, tasks and history",
)
async def get_application(
    application_id: ApplicationId, principal: CurrentPrincipal, session: SessionDep
) -> Application:
    application = await applications_service.get_visible(
        session, principal=principal, application_id=application_id
    )
    # An officer reading for their department sees the materials its branches need only.
    department = None if applications_service.may_read(principal, application) else principal.org
    return await views.full(session, application, department=department)


@router.patch("/applications/{application_id}", summary="Edit a draft's form")
async def update_draft(
    application_id: ApplicationId,
    update: ApplicationUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Application:
    application = await applications_service.update_draft(
        session, principal=principal, application_id=application_id, form=update.form,
        runtime=runtime,
    )  # fmt: skip
    return await views.full(session, application)


@router.post("/applications/{application_id}/submit", summary="Submit a draft")
async def submit_draft(
    application_id: ApplicationId,
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Application:
    application = await applications_service.submit_draft(
        session, principal=principal, application_id=application_id, runtime=runtime
    )
    return await views.full(session, application)


@router.post("/applications/{application_id}/withdraw", summary="Withdraw before a decision")
async def withdraw(
    application_id: ApplicationId,
    principal: CurrentPrincipal,
    session: SessionDep,
    withdrawal: Withdrawal | None = None,
) -> Application:
    application = await applications_service.withdraw(
        session, principal=principal, application_id=application_id,
        reason=withdrawal.reason if withdrawal else None,
    )  # fmt: skip
    return await views.full(session, application)


@router.post(
    "/applications/{application_id}/supplement",
    summary="Answer the single supplement request (补正): changed fields, uploads made before",
)
async def answer_supplement(
    application_id: ApplicationId,
    answer: SupplementAnswer,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> Application:
    application = await applications_service.answer_supplement(
        session, principal=principal, application_id=application_id, answer=answer
    )
    return await views.full(session, application)


@router.post(
    "/applications/{application_id}/materials/{material}",
    summary="Upload a material: the request body is the file, its Content-Type the file's",
    description=(
        "Streamed to storage with a SHA-256 checksum; the content type must be one the item "
        "accepts for this material (415 otherwise) and the size within its limit (413). "
        "`filename` is kept, made safe (no folders, no control characters)."
    ),
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/pdf": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
    }}},
)  # fmt: skip
async def upload_material(
    application_id: ApplicationId,
    material: MaterialKey,
    request: Request,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    filename: Annotated[str | None, Query(max_length=255)] = None,
) -> Material:
    # No request session: the upload opens short ones of its own around the body's streaming.
    row = await applications_service.upload(
        request.app.state.database.sessionmaker, principal=principal,
        application_id=application_id, key=material,
        content_type=request.headers.get("content-type"), file_name=filename,
        chunks=request.stream(), runtime=runtime,
    )  # fmt: skip
    return views.material(row)
