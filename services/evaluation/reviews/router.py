"""The reviews API (好差评)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response, status

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal
from libs.common.database import SessionDep
from libs.common.pagination import TIME_TEXT_CURSOR, Page, PageDep, encode_cursor
from services.evaluation.reviews import service as reviews_service
from services.evaluation.reviews.schemas import ID_PATTERN, Review, ReviewCreate, ReviewUpdate
from services.evaluation.settings import EvaluationSettings

router = APIRouter(tags=["reviews"])

ReviewId = Annotated[str, Path(pattern=ID_PATTERN)]
OrgId = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


def _settings(request: Request) -> EvaluationSettings:
    settings: EvaluationSettings = request.app.state.settings
    return settings


@router.post(
    "/reviews",
    status_code=status.HTTP_201_CREATED,
    summary="Review one of your finished applications (the applicant, once)",
    responses=AUTH_RESPONSES,
)
async def submit_review(
    body: ReviewCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Review:
    review, created = await reviews_service.submit(
        session=session, principal=principal, body=body, idempotency_key=idempotency_key,
        settings=_settings(request),
    )  # fmt: skip
    if not created:
        response.status_code = status.HTTP_200_OK
    return await reviews_service.read(session=session, principal=principal, review_id=review.id)


@router.patch(
    "/reviews/{review_id}",
    summary="Change your review within the edit window",
    responses=AUTH_RESPONSES,
)
async def update_review(
    review_id: ReviewId,
    body: ReviewUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
) -> Review:
    await reviews_service.update(
        session=session, principal=principal, review_id=review_id, body=body,
        settings=_settings(request),
    )  # fmt: skip
    return await reviews_service.read(session=session, principal=principal, review_id=review_id)


@router.get(
    "/reviews/{review_id}",
    summary="A review: yours, your department's, or anonymised for evaluators",
    responses=AUTH_RESPONSES,
)
async def get_review(
    review_id: ReviewId, principal: CurrentPrincipal, session: SessionDep
) -> Review:
    return await reviews_service.read(session=session, principal=principal, review_id=review_id)


@router.get(
    "/reviews",
    summary="Reviews you may see, newest first",
    responses=AUTH_RESPONSES,
)
async def list_reviews(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    department_id: OrgId = None,
    created_from: Annotated[datetime | None, Query(alias="from")] = None,
    created_to: Annotated[datetime | None, Query(alias="to")] = None,
    max_overall: Annotated[int | None, Query(ge=1, le=5, description="e.g. 2: bad reviews")] = None,
) -> Page[Review]:
    found = await reviews_service.search(
        session=session, principal=principal, department_id=department_id,
        created_from=created_from, created_to=created_to, max_overall=max_overall,
        after=page.position(TIME_TEXT_CURSOR), limit=page.limit,
    )  # fmt: skip
    next_cursor = (
        encode_cursor([found[-1].created_at.isoformat(), found[-1].id])
        if len(found) == page.limit
        else None
    )
    return Page[Review](items=found, next_cursor=next_cursor)
