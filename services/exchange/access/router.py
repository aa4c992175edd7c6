"""The access API: grants (共享授权), record queries, consents (授权同意) and "who used my data"."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request, status

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal, Principal
from libs.common.database import SessionDep
from libs.common.errors import PROBLEM_CONTENT_TYPE, Problem
from libs.common.pagination import INT_CURSOR, TEXT_CURSOR, Page, PageDep, encode_cursor
from services.exchange.access import consents as consents_service
from services.exchange.access import fetch, tracker
from services.exchange.access import grants as grants_service
from services.exchange.access import queries as queries_service
from services.exchange.access import repository as access_repository
from services.exchange.access.dependencies import GrantCacheDep, query_services
from services.exchange.access.schemas import (
    FIELD_NAME_PATTERN,
    ID_PATTERN,
    AccessView,
    BatchResult,
    Consent,
    ConsentCreate,
    Grant,
    GrantApproval,
    GrantCreate,
    GrantRefusal,
    GrantRevocation,
    GrantStatus,
    RecordAnswer,
    RecordBatchAnswer,
    RecordBatchQuery,
)
from services.exchange.access.subjects import Whose

router = APIRouter()

GrantId = Annotated[str, Path(pattern=ID_PATTERN)]
ConsentId = Annotated[str, Path(pattern=ID_PATTERN)]
DatasetId = Annotated[str, Path(pattern=ID_PATTERN)]

WhoseQuery = Annotated[
    Whose | None,
    Query(description="self: the person's own; organisation: the enterprise an agent acts for."),
]
_REFUSED: dict[int | str, dict[str, Any]] = {
    403: {
        "model": Problem,
        "content": {PROBLEM_CONTENT_TYPE: {}},
        "description": "Refused (and recorded in the ledger): `reason` says why "
        "(no-grant, grant-expired, no-basis, consent-revoked, ...), `ledger_positions` where.",
    },
}


# --- Queries -----------------------------------------------------------------------------------


def _applicant(principal: Principal, request: Request) -> queries_service.Applicant | None:
    return queries_service.applicant_of(
        principal,
        request.headers.get(queries_service.APPLICANT_HEADER),
        request.headers.get(queries_service.APPLICANT_ORG_HEADER),
    )


async def read_record(
    dataset_id: fetch.DatasetIdPath,
    subject_key: fetch.SubjectKeyPath,
    purpose: fetch.PurposeQuery,
    principal: CurrentPrincipal,
    fields: fetch.FieldsQuery = None,
    basis: fetch.BasisQuery = None,
) -> RecordAnswer:
    """Only documents the operation: never called, as ``fetch.FetchRoute`` replaces the
    handler with ``fetch.read_record`` (tests/exchange/access cover the answers)."""
    raise AssertionError("unreachable: fetch.FetchRoute answers this operation")


router.add_api_route(
    fetch.PATH,
    read_record,
    methods=["GET"],
    tags=["records"],
    summary="One subject's record, as the grant, the basis and consent allow; recorded",
    responses={**AUTH_RESPONSES, **_REFUSED},
    route_class_override=fetch.FetchRoute,
)


@router.post(
    "/datasets/{dataset_id}/records:batch",
    tags=["records"],
    summary="Records of several subjects (at most 100), each decided and recorded on its own",
    responses={**AUTH_RESPONSES, **_REFUSED},
)
async def read_records(
    dataset_id: DatasetId,
    batch: RecordBatchQuery,
    principal: CurrentPrincipal,
    request: Request,
) -> RecordBatchAnswer:
    answer = await queries_service.query(
        services=query_services(request.app),
        principal=principal,
        dataset_id=dataset_id,
        subjects=[
            queries_service.SubjectQuery(
                s.subject_key,
                s.basis if s.basis is not None else batch.basis,
                loc=("body", "subjects", i, "subject_key"),
                basis_loc=("body", "subjects", i, "basis") if s.basis else ("body", "basis"),
            )
            for i, s in enumerate(batch.subjects)
        ],
        purpose=batch.purpose,
        fields=batch.fields,
        on_behalf_of=request.headers.get(queries_service.ON_BEHALF_OF_HEADER),
        applicant=_applicant(principal, request),
    )
    return RecordBatchAnswer(
        dataset_id=answer.dataset_id,
        fields=answer.fields,
        items=[
            BatchResult(
                subject_key=o.subject_key,
                outcome="read" if o.outcome == "read" else
                "not_found" if o.outcome == "not_found" else "refused",
                record=o.record,
                masked_fields=o.masked_fields,
                reason=o.reason,
                ledger_position=o.ledger_position,
            )
            for o in answer.outcomes
        ],
    )  # fmt: skip


# --- Grants ------------------------------------------------------------------------------------


@router.post(
    "/grants",
    status_code=status.HTTP_201_CREATED,
    tags=["grants"],
    summary="Ask for access to a dataset's fields (departments and their systems)",
    responses=AUTH_RESPONSES,
)
async def request_grant(
    draft: GrantCreate, principal: CurrentPrincipal, session: SessionDep, cache: GrantCacheDep
) -> Grant:
    grant = await grants_service.request(
        session=session,
        cache=cache,
        principal=principal,
        draft=draft,
        requester_org_id=draft.requester_org_id,
    )
    return grants_service.to_view(grant)


@router.get(
    "/grants",
    tags=["grants"],
    summary="Grants of the caller's organisation, as requester or owner (all for admins)",
    responses=AUTH_RESPONSES,
)
async def list_grants(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    side: Annotated[
        Literal["requester", "owner", "any"],
        Query(description="requester: asked by my organisation; owner: of my datasets."),
    ] = "any",
    grant_status: Annotated[GrantStatus | None, Query(alias="status")] = None,
    dataset_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
) -> Page[Grant]:
    found = await grants_service.search(
        session=session,
        principal=principal,
        side=side,
        status=grant_status,
        dataset_id=dataset_id,
        before=page.position(TEXT_CURSOR),
        limit=page.limit,
    )
    next_cursor = encode_cursor(found[-1].id) if len(found) == page.limit else None
    return Page[Grant](items=[grants_service.to_view(g) for g in found], next_cursor=next_cursor)


@router.get("/grants/{grant_id}", tags=["grants"], summary="One grant", responses=AUTH_RESPONSES)
async def get_grant(grant_id: GrantId, principal: CurrentPrincipal, session: SessionDep) -> Grant:
    grant = await grants_service.visible(session=session, principal=principal, grant_id=grant_id)
    return grants_service.to_view(grant)


@router.post(
    "/grants/{grant_id}/approve",
    tags=["grants"],
    summary="Grant a pending request (the owner department's admins, platform admins)",
    responses=AUTH_RESPONSES,
)
async def approve_grant(
    grant_id: GrantId,
    principal: CurrentPrincipal,
    session: SessionDep,
    cache: GrantCacheDep,
    approval: Annotated[GrantApproval | None, Body()] = None,
) -> Grant:
    grant = await grants_service.approve(
        session=session,
        cache=cache,
        principal=principal,
        grant_id=grant_id,
        approval=approval or GrantApproval(),
    )
    return grants_service.to_view(grant)


@router.post(
    "/grants/{grant_id}/refuse",
    tags=["grants"],
    summary="Refuse a pending request, saying why (the owner's admins, platform admins)",
    responses=AUTH_RESPONSES,
)
async def refuse_grant(
    grant_id: GrantId, refusal: GrantRefusal, principal: CurrentPrincipal, session: SessionDep
) -> Grant:
    grant = await grants_service.refuse(
        session=session, principal=principal, grant_id=grant_id, reason=refusal.reason
    )
    return grants_service.to_view(grant)


@router.post(
    "/grants/{grant_id}/revoke",
    tags=["grants"],
    summary="End a pending or granted grant (owner's admins, the requester, platform admins)",
    responses=AUTH_RESPONSES,
)
async def revoke_grant(
    grant_id: GrantId,
    principal: CurrentPrincipal,
    session: SessionDep,
    cache: GrantCacheDep,
    revocation: Annotated[GrantRevocation | None, Body()] = None,
) -> Grant:
    grant = await grants_service.revoke(
        session=session,
        cache=cache,
        principal=principal,
        grant_id=grant_id,
        reason=revocation.reason if revocation else None,
    )
    return grants_service.to_view(grant)


# --- Consents ----------------------------------------------------------------------------------


async def _consent_view(session: SessionDep, consent: Any) -> Consent:
    names = await access_repository.organisation_names(session, org_ids=[consent.grantee_org_id])
    return consents_service.to_view(consent, grantee_name=names.get(consent.grantee_org_id))


@router.post(
    "/consents",
    status_code=status.HTTP_201_CREATED,
    tags=["consents"],
    summary="Let an organisation read named fields about you (citizens, enterprise agents)",
    responses=AUTH_RESPONSES,
)
async def give_consent(
    draft: ConsentCreate, principal: CurrentPrincipal, session: SessionDep
) -> Consent:
    consent = await consents_service.give(session=session, principal=principal, draft=draft)
    return await _consent_view(session, consent)


@router.get(
    "/consents",
    tags=["consents"],
    summary="Your consents (or your enterprise's), newest first",
    responses=AUTH_RESPONSES,
)
async def list_consents(
    principal: CurrentPrincipal, session: SessionDep, page: PageDep, whose: WhoseQuery = None
) -> Page[Consent]:
    found = await consents_service.search(
        session=session,
        principal=principal,
        whose=whose,
        before=page.position(TEXT_CURSOR),
        limit=page.limit,
    )
    names = await access_repository.organisation_names(
        session, org_ids=[c.grantee_org_id for c in found]
    )
    next_cursor = encode_cursor(found[-1].id) if len(found) == page.limit else None
    return Page[Consent](
        items=[
            consents_service.to_view(c, grantee_name=names.get(c.grantee_org_id)) for c in found
        ],
        next_cursor=next_cursor,
    )


@router.get(
    "/consents/{consent_id}", tags=["consents"], summary="One of your consents",
    responses=AUTH_RESPONSES,
)  # fmt: skip
async def get_consent(
    consent_id: ConsentId, principal: CurrentPrincipal, session: SessionDep
) -> Consent:
    consent = await consents_service.read(
        session=session, principal=principal, consent_id=consent_id
    )
    return await _consent_view(session, consent)


@router.post(
    "/consents/{consent_id}/revoke",
    tags=["consents"],
    summary="Take a consent back; queries citing it are refused from now on",
    responses=AUTH_RESPONSES,
)
async def revoke_consent(
    consent_id: ConsentId, principal: CurrentPrincipal, session: SessionDep
) -> Consent:
    consent = await consents_service.revoke(
        session=session, principal=principal, consent_id=consent_id
    )
    return await _consent_view(session, consent)


# --- Who used my data --------------------------------------------------------------------------


@router.get(
    "/me/accesses",
    tags=["me"],
    summary="Who used my data: every read of (and refused attempt at) your records",
    responses=AUTH_RESPONSES,
)
async def my_accesses(
    principal: CurrentPrincipal, session: SessionDep, page: PageDep, whose: WhoseQuery = None
) -> Page[AccessView]:
    before = page.position(INT_CURSOR)
    found = await tracker.my_accesses(
        session=session, principal=principal, whose=whose, before=before, limit=page.limit
    )
    next_cursor = encode_cursor(found[-1].position) if len(found) == page.limit else None
    return Page[AccessView](items=found, next_cursor=next_cursor)


__all__ = ["FIELD_NAME_PATTERN", "router"]
