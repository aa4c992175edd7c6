"""Applications API: an organisation's managers register applications and issue keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from gateway.applications import service as applications_service
from gateway.applications.schemas import (
    ID_PATTERN,
    ORG_PATTERN,
    ApiKey,
    ApiKeyCreate,
    Application,
    ApplicationCreate,
    IssuedApiKey,
)
from gateway.edge.keys import KeyDirectory
from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal
from libs.common.database import SessionDep
from libs.common.pagination import TEXT_CURSOR, Page, PageDep, encode_cursor

router = APIRouter(tags=["applications"], responses=AUTH_RESPONSES)

ApplicationId = Annotated[str, Path(pattern=ID_PATTERN)]
KeyId = Annotated[str, Path(pattern=ID_PATTERN)]


def _directory(request: Request) -> KeyDirectory:
    directory: KeyDirectory = request.app.state.keys
    return directory


@router.post(
    "/applications",
    status_code=status.HTTP_201_CREATED,
    summary="Register an application (department admins, enterprise agents, platform admins)",
)
async def create_application(
    draft: ApplicationCreate, principal: CurrentPrincipal, session: SessionDep
) -> Application:
    application = await applications_service.create(
        session=session, principal=principal, draft=draft
    )
    return Application.model_validate(application)


@router.get("/applications", summary="Your organisation's applications (all for platform admins)")
async def list_applications(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    org_id: Annotated[str | None, Query(pattern=ORG_PATTERN)] = None,
) -> Page[Application]:
    after = page.position(TEXT_CURSOR)
    rows = await applications_service.search(
        session=session, principal=principal, org_id=org_id, after=after, limit=page.limit
    )
    items = [Application.model_validate(a) for a in rows]
    next_cursor = encode_cursor(items[-1].id) if len(items) == page.limit else None
    return Page[Application](items=items, next_cursor=next_cursor)


@router.get("/applications/{application_id}", summary="An application")
async def get_application(
    application_id: ApplicationId, principal: CurrentPrincipal, session: SessionDep
) -> Application:
    application = await applications_service.read(
        session=session, principal=principal, application_id=application_id
    )
    return Application.model_validate(application)


@router.post(
    "/applications/{application_id}/keys",
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API key on a plan; the key is in this answer only",
)
async def issue_key(
    application_id: ApplicationId,
    draft: ApiKeyCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
    response: Response,
) -> IssuedApiKey:
    key, secret = await applications_service.issue_key(
        session=session,
        principal=principal,
        application_id=application_id,
        draft=draft,
        hasher=_directory(request).hasher,
        env=request.app.state.settings.env,
    )
    response.headers["Cache-Control"] = "no-store"
    view = applications_service.to_view(key)
    return IssuedApiKey(**view.model_dump(), key=secret)


@router.get("/applications/{application_id}/keys", summary="An application's keys (never the keys)")
async def list_keys(
    application_id: ApplicationId, principal: CurrentPrincipal, session: SessionDep
) -> list[ApiKey]:
    keys = await applications_service.list_keys(
        session=session, principal=principal, application_id=application_id
    )
    return [applications_service.to_view(k) for k in keys]


@router.delete(
    "/applications/{application_id}/keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a key: every gateway replica refuses it from then on",
)
async def revoke_key(
    application_id: ApplicationId,
    key_id: KeyId,
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
) -> None:
    await applications_service.revoke_key(
        session=session, principal=principal, application_id=application_id, key_id=key_id
    )
    await session.commit()
    # This replica at once; the others when the revocation event reaches them.
    _directory(request).forget_key(key_id)
