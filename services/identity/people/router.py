"""The people API: register, me, search, verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import JSONResponse, Response

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal
from libs.common.database import SessionDep
from libs.common.errors import problem_response
from libs.common.pagination import TEXT_CURSOR, Page, PageDep, encode_cursor
from libs.common.subjects import SubjectRefsDep
from services.identity.dependencies import CodeSenderDep, ProtectorDep
from services.identity.people import service as people_service
from services.identity.people.schemas import (
    EmailConfirmation,
    Person,
    PersonUpdate,
    Registration,
    RegistrationReceived,
    Verification,
)

router = APIRouter(tags=["people"])


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Register as a citizen (assurance level 1)",
    description=(
        "The answer is the same whether or not an account exists for these details, so the "
        "endpoint tells no one who is registered; an existing account's holder is told instead."
    ),
)
async def register(
    registration: Registration,
    session: SessionDep,
    protector: ProtectorDep,
    subject_refs: SubjectRefsDep,
) -> RegistrationReceived:
    await people_service.register(
        session=session, protector=protector, subject_refs=subject_refs, registration=registration
    )
    return RegistrationReceived()


@router.get("/me", summary="The signed-in person", responses=AUTH_RESPONSES)
async def me(
    principal: CurrentPrincipal,
    session: SessionDep,
    protector: ProtectorDep,
    reveal: Annotated[bool, Query(description="Show your full resident id number.")] = False,
) -> Person:
    return await people_service.view(
        session=session,
        protector=protector,
        principal=principal,
        user_id=principal.sub,
        reveal=reveal,
    )


@router.patch(
    "/me",
    summary="Change your name or e-mail",
    description=(
        "A new e-mail address is not used at once: a six-digit code goes to it, and "
        "`pending_email` shows it until you confirm (POST /v1/me/email/confirmation). The answer "
        "is the same whether or not another account uses the address. `null` removes it."
    ),
    responses=AUTH_RESPONSES,
)
async def update_me(
    update: PersonUpdate,
    principal: CurrentPrincipal,
    session: SessionDep,
    protector: ProtectorDep,
    sender: CodeSenderDep,
) -> Person:
    return await people_service.update_self(
        session=session, protector=protector, sender=sender, principal=principal, update=update
    )


@router.post(
    "/me/email/confirmation",
    summary="Confirm a new e-mail address with the code sent to it",
    responses={**AUTH_RESPONSES, 422: {"description": "Wrong or expired code (one answer)"}},
)
async def confirm_email(
    confirmation: EmailConfirmation,
    principal: CurrentPrincipal,
    session: SessionDep,
    protector: ProtectorDep,
) -> Response:
    person = await people_service.confirm_email(
        session=session, protector=protector, principal=principal, confirmation=confirmation
    )
    if person is None:
        # Returned, not raised: the failed try is counted (the request's transaction commits).
        refused = people_service.email_code_refused()
        return problem_response(
            refused.status,
            code=refused.code,
            title=refused.title,
            detail=refused.detail,
            errors=refused.field_errors,
        )
    return JSONResponse(person.model_dump(mode="json"))


@router.get(
    "/users",
    summary="Search people (platform admins; department admins within their department)",
    responses=AUTH_RESPONSES,
)
async def search_users(
    principal: CurrentPrincipal,
    session: SessionDep,
    protector: ProtectorDep,
    page: PageDep,
    name: Annotated[str | None, Query(max_length=100, description="Name prefix.")] = None,
    phone: Annotated[str | None, Query(max_length=20)] = None,
    resident_id: Annotated[str | None, Query(max_length=18)] = None,
    org_id: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[Person]:
    people = await people_service.search(
        session=session,
        protector=protector,
        principal=principal,
        name_prefix=name,
        phone=phone,
        resident_id=resident_id,
        org_id=org_id,
        after=page.position(TEXT_CURSOR),
        limit=page.limit,
    )
    next_cursor = encode_cursor(people[-1].id) if len(people) == page.limit else None
    return Page[Person](items=people, next_cursor=next_cursor)


@router.get("/users/{user_id}", summary="One person", responses=AUTH_RESPONSES)
async def get_user(
    user_id: Annotated[str, Path(max_length=32)],
    principal: CurrentPrincipal,
    session: SessionDep,
    protector: ProtectorDep,
    reveal: Annotated[
        bool, Query(description="Show the full resident id (platform admins; recorded).")
    ] = False,
) -> Person:
    return await people_service.view(
        session=session, protector=protector, principal=principal, user_id=user_id, reveal=reveal
    )


@router.post(
    "/users/{user_id}/verification",
    summary="Record a real-name verification, raising the assurance level",
    responses=AUTH_RESPONSES,
)
async def verify_user(
    user_id: Annotated[str, Path(max_length=32)],
    verification: Verification,
    principal: CurrentPrincipal,
    session: SessionDep,
    protector: ProtectorDep,
) -> Person:
    return await people_service.verify(
        session=session,
        protector=protector,
        principal=principal,
        user_id=user_id,
        verification=verification,
    )
