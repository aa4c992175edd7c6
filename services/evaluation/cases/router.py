"""The rectification API (差评整改)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal
from libs.common.database import SessionDep
from libs.common.pagination import TIME_TEXT_CURSOR, Page, PageDep, encode_cursor
from services.evaluation.cases import service as cases_service
from services.evaluation.cases.schemas import Case, CaseReopen, CaseReply
from services.evaluation.reviews.router import OrgId
from services.evaluation.reviews.schemas import ID_PATTERN
from services.evaluation.settings import EvaluationSettings

router = APIRouter(tags=["cases"])

CaseId = Annotated[str, Path(pattern=ID_PATTERN)]


@router.get(
    "/cases", summary="Rectification cases you may see, newest first", responses=AUTH_RESPONSES
)
async def list_cases(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    department_id: OrgId = None,
    status: Literal["open", "replied", "confirmed"] | None = None,
) -> Page[Case]:
    found = await cases_service.search(
        session=session, principal=principal, department_id=department_id, status=status,
        after=page.position(TIME_TEXT_CURSOR), limit=page.limit,
    )  # fmt: skip
    next_cursor = (
        encode_cursor([found[-1].opened_at.isoformat(), found[-1].id])
        if len(found) == page.limit
        else None
    )
    return Page[Case](items=found, next_cursor=next_cursor)


@router.get("/cases/{case_id}", summary="A rectification case", responses=AUTH_RESPONSES)
async def get_case(case_id: CaseId, principal: CurrentPrincipal, session: SessionDep) -> Case:
    return await cases_service.read(session=session, principal=principal, case_id=case_id)


@router.post(
    "/cases/{case_id}/reply",
    summary="Reply and record the fix (the responsible department)",
    responses=AUTH_RESPONSES,
)
async def reply_to_case(
    case_id: CaseId, body: CaseReply, principal: CurrentPrincipal, session: SessionDep
) -> Case:
    case = await cases_service.reply(
        session=session, principal=principal, case_id=case_id, body=body
    )
    return cases_service.to_view(case, principal=principal)


@router.post(
    "/cases/{case_id}/confirm",
    summary="Accept the fix (the applicant)",
    responses=AUTH_RESPONSES,
)
async def confirm_case(case_id: CaseId, principal: CurrentPrincipal, session: SessionDep) -> Case:
    case = await cases_service.confirm(session=session, principal=principal, case_id=case_id)
    return cases_service.to_view(case, principal=principal)


@router.post(
    "/cases/{case_id}/reopen",
    summary="Do not accept the fix: open the case again (the applicant)",
    responses=AUTH_RESPONSES,
)
async def reopen_case(
    case_id: CaseId,
    body: CaseReopen,
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
) -> Case:
    settings: EvaluationSettings = request.app.state.settings
    case = await cases_service.reopen(
        session=session, principal=principal, case_id=case_id, body=body, settings=settings
    )
    return cases_service.to_view(case, principal=principal)
