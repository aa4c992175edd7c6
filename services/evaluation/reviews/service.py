"""The rules of reviews (好差评): one per finished application, by its applicant."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.errors import Forbidden
from libs.common.events import new_event, outbox
from services.evaluation import audience
from services.evaluation.cases import service as cases_service
from services.evaluation.clock import as_utc, utcnow
from services.evaluation.facts import repository as facts_repository
from services.evaluation.facts.models import ApplicationFact
from services.evaluation.regions import ancestors_and_self
from services.evaluation.reviews import repository as reviews_repository
from services.evaluation.reviews.events import ReviewSnapshot, ReviewSubmitted, ReviewUpdated
from services.evaluation.reviews.exceptions import (
    ApplicationNotFinished,
    ApplicationNotReviewable,
    EditWindowClosed,
    IdempotencyKeyReused,
    ReviewExists,
    ReviewNotFound,
)
from services.evaluation.reviews.models import Review
from services.evaluation.reviews.repository import ReviewFilters
from services.evaluation.reviews.schemas import Review as ReviewView
from services.evaluation.reviews.schemas import ReviewCreate, ReviewUpdate
from services.evaluation.settings import EvaluationSettings

REVIEWABLE_OUTCOMES = ("completed", "rejected")
RATINGS = ("overall", "speed", "attitude", "clarity", "convenience")


def _request_hash(body: ReviewCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _scopes(fact: ApplicationFact, kind: str) -> list[str]:
    """The scope ids of one kind the application counts in (resolved by the projection)."""
    prefix = f"{kind}|"
    return [
        s.removeprefix(prefix) for s in (fact.contribution or {}).get("scopes", [])
        if s.startswith(prefix)
    ]  # fmt: skip


def responsible_departments(fact: ApplicationFact) -> list[str]:
    """Who answers for a bad review: the owning department, else every department involved."""
    departments = _scopes(fact, "department")
    if fact.owner_org_id:
        return [fact.owner_org_id]
    return departments


async def submit(
    *,
    session: AsyncSession,
    principal: Principal,
    body: ReviewCreate,
    idempotency_key: str | None,
    settings: EvaluationSettings,
) -> tuple[Review, bool]:
    """Review one of the caller's finished applications; (review, created)."""
    if not audience.is_applicant(principal):
        raise Forbidden("Only the applicant (a citizen or an enterprise agent) reviews.")
    request_hash = _request_hash(body)
    repeated, existing = await _earlier_submission(
        session, principal=principal, body=body, idempotency_key=idempotency_key,
        request_hash=request_hash,
    )  # fmt: skip
    if repeated is not None:
        return repeated, False
    fact = await facts_repository.get_application(session, body.application_id)
    if fact is None or not audience.owns(
        principal, applicant_id=fact.applicant_id, applicant_org_id=fact.applicant_org_id
    ):
        raise ApplicationNotReviewable(f"No application {body.application_id} of yours.")
    if fact.outcome not in REVIEWABLE_OUTCOMES:
        raise ApplicationNotFinished(
            "Only a completed or rejected application can be reviewed; this one is "
            f"{fact.outcome or 'still in progress'}."
        )
    if existing is not None:  # reviewed by another agent of the same enterprise
        raise ReviewExists("This application has been reviewed.")
    now = utcnow()
    regions = _scopes(fact, "region")
    review = Review(
        application_id=fact.application_id,
        applicant_id=principal.sub,
        applicant_org_id=fact.applicant_org_id,
        outcome=fact.outcome,
        item_ids=_scopes(fact, "item"),
        service_code=fact.service_code,
        department_ids=_scopes(fact, "department"),
        # The most specific region (its ancestors follow from the code).
        region_code=max(regions, key=lambda r: len(ancestors_and_self(r))) if regions else None,
        channel=fact.channel,
        overall=body.overall,
        speed=body.speed,
        attitude=body.attitude,
        clarity=body.clarity,
        convenience=body.convenience,
        comment=body.comment or None,
        created_at=now,
        updated_at=now,
        editable_until=now + timedelta(seconds=settings.review_edit_window_s),
        revision=1,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    try:
        # A savepoint: a concurrent twin (the same application, or the same caller's key) that
        # committed first makes this insert fail on a unique index; answer as if it came after.
        async with session.begin_nested():
            await reviews_repository.insert(session, review)
    except IntegrityError:
        repeated, existing = await _earlier_submission(
            session, principal=principal, body=body, idempotency_key=idempotency_key,
            request_hash=request_hash,
        )  # fmt: skip
        if repeated is not None:
            return repeated, False
        if existing is not None:  # reviewed by another agent of the same enterprise
            raise ReviewExists("This application has been reviewed.") from None
        raise
    await outbox.add(session, new_event(ReviewSubmitted(**_snapshot(review)), subject=review.id))
    if review.overall <= 2:
        for department in responsible_departments(fact):
            await cases_service.open_case(
                session=session, review=review, department_id=department, settings=settings
            )
    return review, True


async def _earlier_submission(
    session: AsyncSession,
    *,
    principal: Principal,
    body: ReviewCreate,
    idempotency_key: str | None,
    request_hash: str,
) -> tuple[Review | None, Review | None]:
    """(the review this submission repeats: the same key and body, the application's review):
    a 409 problem if the key was used with another body or the caller's application already
    has a review."""
    if idempotency_key is not None:
        # A key is the caller's, not the application's: the same key with another body (another
        # application, other ratings) is refused, never a second review.
        keyed = await reviews_repository.get_by_key(session, principal.sub, idempotency_key)
        if keyed is not None:
            if keyed.request_hash != request_hash:
                raise IdempotencyKeyReused("This Idempotency-Key was used with a different review.")
            return keyed, None
    existing = await reviews_repository.get_for_application(session, body.application_id)
    if existing is not None and audience.owns(
        principal, applicant_id=existing.applicant_id, applicant_org_id=existing.applicant_org_id
    ):
        raise ReviewExists("This application has been reviewed; edit the review instead.")
    return None, existing


async def update(
    *,
    session: AsyncSession,
    principal: Principal,
    review_id: str,
    body: ReviewUpdate,
    settings: EvaluationSettings,
) -> Review:
    """Change the caller's review while its edit window is open."""
    review = await reviews_repository.get(session, review_id)
    if review is None or not audience.owns(
        principal, applicant_id=review.applicant_id, applicant_org_id=review.applicant_org_id
    ):
        raise ReviewNotFound(f"No review {review_id} of yours.")
    now = utcnow()
    if now > as_utc(review.editable_until):
        raise EditWindowClosed(
            f"A review can be changed until {as_utc(review.editable_until).isoformat()}."
        )
    was_bad = review.overall <= 2
    for name in body.model_fields_set:
        value = getattr(body, name)
        setattr(review, name, (value or None) if name == "comment" else value)
    review.updated_at = now
    review.revision += 1
    await session.flush()
    await outbox.add(session, new_event(ReviewUpdated(**_snapshot(review)), subject=review.id))
    if review.overall <= 2 and not was_bad:
        fact = await facts_repository.get_application(session, review.application_id)
        departments = responsible_departments(fact) if fact else review.department_ids
        for department in departments:
            await cases_service.open_case(
                session=session, review=review, department_id=department, settings=settings
            )
    return review


async def read(*, session: AsyncSession, principal: Principal, review_id: str) -> ReviewView:
    """One review, as the caller may see it."""
    review = await reviews_repository.get(session, review_id)
    if review is None or not _may_see(principal, review):
        raise ReviewNotFound(f"No review {review_id} you may see.")
    case_ids = await cases_service.case_ids_of_review(session=session, review_id=review.id)
    return to_view(review, principal=principal, case_ids=case_ids)


async def search(
    *,
    session: AsyncSession,
    principal: Principal,
    department_id: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    max_overall: int | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[ReviewView]:
    """Reviews the caller may see, newest first."""
    filters = ReviewFilters(
        department_id=department_id,
        created_from=created_from,
        created_to=created_to,
        max_overall=max_overall,
    )
    if audience.is_platform(principal) or audience.is_evaluator(principal):
        pass
    elif (own := audience.department_of(principal)) is not None:
        if department_id not in (None, own):
            raise Forbidden("A department sees its own reviews only.")
        filters = ReviewFilters(**{**filters.__dict__, "department_id": own})
    elif audience.is_applicant(principal):
        filters = ReviewFilters(
            **{**filters.__dict__, "applicant_id": principal.sub,
               "applicant_org_id": audience.enterprise_of(principal)}
        )  # fmt: skip
    else:
        raise Forbidden("Reviews are for applicants, departments, evaluators and the platform.")
    found = await reviews_repository.search(session, filters=filters, after=after, limit=limit)
    return [to_view(r, principal=principal) for r in found]


def _may_see(principal: Principal, review: Review) -> bool:
    if audience.is_platform(principal) or audience.is_evaluator(principal):
        return True
    department = audience.department_of(principal)
    if department is not None and department in review.department_ids:
        return True
    return audience.owns(
        principal, applicant_id=review.applicant_id, applicant_org_id=review.applicant_org_id
    )


def to_view(
    review: Review, *, principal: Principal, case_ids: list[str] | None = None
) -> ReviewView:
    """The review as the caller may see it (anonymised for evaluators)."""
    own = audience.owns(
        principal, applicant_id=review.applicant_id, applicant_org_id=review.applicant_org_id
    )
    platform = audience.is_platform(principal)
    department = audience.department_of(principal) in review.department_ids
    anonymous = not (own or platform or department)
    return ReviewView(
        id=review.id,
        application_id=None if anonymous else review.application_id,
        applicant_id=review.applicant_id if (own or platform) else None,
        outcome=review.outcome,
        item_ids=review.item_ids,
        service_code=review.service_code,
        department_ids=review.department_ids,
        region_code=review.region_code,
        channel=review.channel,
        overall=review.overall,
        speed=review.speed,
        attitude=review.attitude,
        clarity=review.clarity,
        convenience=review.convenience,
        comment=None if anonymous else review.comment,
        created_at=review.created_at,
        updated_at=review.updated_at,
        editable_until=review.editable_until,
        revision=review.revision,
        case_ids=case_ids or [],
    )


def _snapshot(review: Review) -> dict[str, object]:
    fields = ReviewSnapshot.model_fields
    values: dict[str, object] = {
        name: getattr(review, name) for name in fields if hasattr(review, name)
    }
    values.update(
        review_id=review.id,
        has_comment=bool(review.comment),
        created_at=as_utc(review.created_at),
        updated_at=as_utc(review.updated_at),
    )
    return values
