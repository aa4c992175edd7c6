"""``/v1/clients``: the client registry, for platform administrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from libs.common.auth import AUTH_RESPONSES, Principal, Role, require_roles
from libs.common.database import SessionDep
from libs.common.pagination import TEXT_CURSOR, Page, PageDep
from services.identity.oauth.clients import service as clients_service
from services.identity.oauth.clients.schemas import (
    CLIENT_ID_PATTERN,
    Client,
    ClientCreate,
    ClientUpdate,
    ClientWithSecret,
)
from services.identity.oauth.dependencies import SettingsDep

router = APIRouter(prefix="/v1/clients", tags=["clients"], responses=AUTH_RESPONSES)

PlatformAdmin = Annotated[Principal, Depends(require_roles(Role.PLATFORM_ADMIN))]
ClientId = Annotated[str, Path(pattern=CLIENT_ID_PATTERN)]


@router.post("", status_code=201, response_model=ClientWithSecret)
async def create_client(
    registration: ClientCreate, session: SessionDep, settings: SettingsDep, admin: PlatformAdmin
) -> ClientWithSecret:
    """Register a client; a confidential client's secret is in this response only."""
    client, secret = await clients_service.register_client(
        session=session, secret_key=settings.secret_key, registration=registration, by=admin.sub
    )
    return ClientWithSecret(**Client.model_validate(client).model_dump(), client_secret=secret)


@router.get("", response_model=Page[Client])
async def list_clients(page: PageDep, session: SessionDep, admin: PlatformAdmin) -> Page[Client]:
    """Every client, by id."""
    items, next_cursor = await clients_service.list_clients(
        session=session, limit=page.limit, after=page.position(TEXT_CURSOR)
    )
    return Page[Client](items=[Client.model_validate(c) for c in items], next_cursor=next_cursor)


@router.get("/{client_id}", response_model=Client)
async def get_client(client_id: ClientId, session: SessionDep, admin: PlatformAdmin) -> Client:
    """One client."""
    return Client.model_validate(
        await clients_service.get_client(session=session, client_id=client_id)
    )


@router.patch("/{client_id}", response_model=Client)
async def update_client(
    client_id: ClientId, changes: ClientUpdate, session: SessionDep, admin: PlatformAdmin
) -> Client:
    """Change a client's name, grants, scopes, redirect URIs, organisation, roles or state."""
    client = await clients_service.update_client(
        session=session, client_id=client_id, changes=changes, by=admin.sub
    )
    return Client.model_validate(client)


@router.post("/{client_id}/secret", response_model=ClientWithSecret)
async def rotate_secret(
    client_id: ClientId, session: SessionDep, settings: SettingsDep, admin: PlatformAdmin
) -> ClientWithSecret:
    """Give the client a new secret, shown in this response only; the old one stops working."""
    client, secret = await clients_service.rotate_client_secret(
        session=session, secret_key=settings.secret_key, client_id=client_id, by=admin.sub
    )
    return ClientWithSecret(**Client.model_validate(client).model_dump(), client_secret=secret)


@router.post("/{client_id}/disable", response_model=Client)
async def disable_client(client_id: ClientId, session: SessionDep, admin: PlatformAdmin) -> Client:
    """Disable the client: no new tokens, no sign-ins through it."""
    client = await clients_service.disable_client(
        session=session, client_id=client_id, by=admin.sub
    )
    return Client.model_validate(client)
