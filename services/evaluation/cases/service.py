"""The rules of rectification (差评整改): open, reply, confirm or reopen, overdue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.errors import Forbidden
from libs.common.events import new_event, outbox
from services.evaluation import audience
from services.evaluation.cases import repository as cases_repository
from services.evaluation.cases.events import (
    CaseConfirmed,
    CaseOpened,
    CaseOverdue,
    CaseReopened,
    CaseReplied,
    CaseSnapshot,
)
from services.evaluation.cases.exceptions import CaseNotFound, CaseStateConflict, TooManyReopens
from services.evaluation.cases.models import Case
from services.evaluation.cases.schemas import Case as CaseView
from services.evaluation.cases.schemas import CaseReopen, CaseReply
from services.evaluation.clock import add_working_days, as_utc, utcnow
from services.evaluation.reviews.models import Review
from services.evaluation.settings import EvaluationSettings


async def open_case(
    *, session: AsyncSession, review: Review, department_id: str, settings: EvaluationSettings
) -> Case | None:
    """Open a case for ``department_id`` about a bad review (once per review and department)."""
    if await cases_repository.exists_open_for(
        session, review_id=review.id, department_id=department_id
    ):
        return None
    now = utcnow()
    case = Case(
        review_id=review.id,
        application_id=review.application_id,
        applicant_id=review.applicant_id,
        applicant_org_id=review.applicant_org_id,
        department_id=department_id,
        item_ids=review.item_ids,
        region_code=review.region_code,
        status="open",
        opened_at=now,
        deadline=add_working_days(now, settings.case_deadline_working_days, settings.timezone),
        reopen_count=0,
        ever_overdue=False,
        revision=1,
    )
    await cases_repository.insert(session, case)
    await _publish(session, CaseOpened, case)
    return case


async def reply(
    *, session: AsyncSession, principal: Principal, case_id: str, body: CaseReply
) -> Case:
    """The responsible department replies and records the fix."""
    case = await _visible(session, principal, case_id)
    if audience.department_of(principal) != case.department_id and not audience.is_platform(
        principal
    ):
        raise Forbidden("Only the responsible department replies to a case.")
    if case.status != "open":
        raise CaseStateConflict(f"The case is {case.status}; only an open case takes a reply.")
    case.reply, case.fix = body.reply, body.fix
    case.replied_at = utcnow()
    case.replied_by = principal.sub
    case.status = "replied"
    case.revision += 1
    await session.flush()
    await _publish(session, CaseReplied, case)
    return case


async def confirm(*, session: AsyncSession, principal: Principal, case_id: str) -> Case:
    """The applicant accepts the fix: the case is rectified."""
    case = await _own(session, principal, case_id)
    if case.status != "replied":
        raise CaseStateConflict(f"The case is {case.status}; only a replied case is confirmed.")
    case.status = "confirmed"
    case.confirmed_at = utcnow()
    case.revision += 1
    await session.flush()
    await _publish(session, CaseConfirmed, case)
    return case


async def reopen(
    *,
    session: AsyncSession,
    principal: Principal,
    case_id: str,
    body: CaseReopen,
    settings: EvaluationSettings,
) -> Case:
    """The applicant does not accept the fix: open again, with a new deadline."""
    case = await _own(session, principal, case_id)
    if case.status != "replied":
        raise CaseStateConflict(f"The case is {case.status}; only a replied case is reopened.")
    if case.reopen_count >= settings.case_max_reopens:
        raise TooManyReopens(f"A case can be reopened {settings.case_max_reopens} time(s).")
    now = utcnow()
    case.status = "open"
    case.reopen_count += 1
    case.reopen_reason = body.reason
    case.deadline = add_working_days(now, settings.case_deadline_working_days, settings.timezone)
    case.overdue_raised_at = None
    case.revision += 1
    await session.flush()
    await _publish(session, CaseReopened, case)
    return case


async def raise_overdue(*, session: AsyncSession, now: datetime, limit: int = 100) -> int:
    """Raise ``case.overdue`` for each open case past its deadline, once per deadline.

    Every replica may run this at the same time: the conditional UPDATE lets one claim each
    case, and the event is written in the same transaction as the claim.
    """
    raised = 0
    for case_id in await cases_repository.overdue_candidates(session, now=now, limit=limit):
        if not await cases_repository.claim_overdue(session, case_id=case_id, now=now):
            continue
        case = await cases_repository.get(session, case_id)
        assert case is not None
        await session.refresh(case)
        await _publish(session, CaseOverdue, case)
        raised += 1
    return raised


async def read(*, session: AsyncSession, principal: Principal, case_id: str) -> CaseView:
    """One case, as the caller may see it."""
    return to_view(await _visible(session, principal, case_id), principal=principal)


async def search(
    *,
    session: AsyncSession,
    principal: Principal,
    department_id: str | None,
    status: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[CaseView]:
    """Cases the caller may see, newest first."""
    applicant_id = applicant_org_id = None
    if audience.is_platform(principal) or audience.is_evaluator(principal):
        pass
    elif (own := audience.department_of(principal)) is not None:
        if department_id not in (None, own):
            raise Forbidden("A department sees its own cases only.")
        department_id = own
    elif audience.is_applicant(principal):
        applicant_id, applicant_org_id = principal.sub, audience.enterprise_of(principal)
    else:
        raise Forbidden("Cases are for applicants, departments, evaluators and the platform.")
    found = await cases_repository.search(
        session, department_id=department_id, applicant_id=applicant_id,
        applicant_org_id=applicant_org_id, status=status, after=after, limit=limit,
    )  # fmt: skip
    return [to_view(c, principal=principal) for c in found]


async def case_ids_of_review(*, session: AsyncSession, review_id: str) -> list[str]:
    """The cases a review opened."""
    return await cases_repository.ids_for_review(session, review_id)


async def _visible(session: AsyncSession, principal: Principal, case_id: str) -> Case:
    case = await cases_repository.get(session, case_id)
    if case is None or not _may_see(principal, case):
        raise CaseNotFound(f"No case {case_id} you may see.")
    return case


async def _own(session: AsyncSession, principal: Principal, case_id: str) -> Case:
    case = await _visible(session, principal, case_id)
    if not audience.owns(
        principal, applicant_id=case.applicant_id, applicant_org_id=case.applicant_org_id
    ):
        raise Forbidden("Only the applicant who wrote the review confirms or reopens its case.")
    return case


def _may_see(principal: Principal, case: Case) -> bool:
    if audience.is_platform(principal) or audience.is_evaluator(principal):
        return True
    if audience.department_of(principal) == case.department_id:
        return True
    return audience.owns(
        principal, applicant_id=case.applicant_id, applicant_org_id=case.applicant_org_id
    )


def to_view(case: Case, *, principal: Principal) -> CaseView:
    """The case as the caller may see it (no ids or text for evaluators)."""
    own = audience.owns(
        principal, applicant_id=case.applicant_id, applicant_org_id=case.applicant_org_id
    )
    platform = audience.is_platform(principal)
    inside = own or platform or audience.department_of(principal) == case.department_id
    return CaseView(
        id=case.id,
        review_id=case.review_id,
        application_id=case.application_id if inside else None,
        applicant_id=case.applicant_id if (own or platform) else None,
        department_id=case.department_id,
        item_ids=case.item_ids,
        region_code=case.region_code,
        status=case.status,
        opened_at=case.opened_at,
        deadline=case.deadline,
        overdue=case.ever_overdue,
        reply=case.reply if inside else None,
        fix=case.fix if inside else None,
        replied_at=case.replied_at,
        confirmed_at=case.confirmed_at,
        reopen_count=case.reopen_count,
        reopen_reason=case.reopen_reason if inside else None,
        revision=case.revision,
    )


async def _publish(session: AsyncSession, event_class: type[CaseSnapshot], case: Case) -> None:
    snapshot = event_class(
        case_id=case.id,
        revision=case.revision,
        review_id=case.review_id,
        application_id=case.application_id,
        department_id=case.department_id,
        item_ids=list(case.item_ids),
        region_code=case.region_code,
        status=case.status,
        opened_at=as_utc(case.opened_at),
        deadline=as_utc(case.deadline),
        replied_at=as_utc(case.replied_at) if case.replied_at else None,
        confirmed_at=as_utc(case.confirmed_at) if case.confirmed_at else None,
        reopen_count=case.reopen_count,
        overdue=case.ever_overdue,
    )
    await outbox.add(session, new_event(snapshot, subject=case.id))
