"""The webhooks API: subscribe the caller's organisation, list, delete, read the delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal
from libs.common.database import SessionDep
from libs.common.pagination import TEXT_CURSOR, TIME_TEXT_CURSOR, Page, PageDep, encode_cursor
from services.workflow.webhooks import service as webhooks_service
from services.workflow.webhooks.deliverer import checks_addresses
from services.workflow.webhooks.schemas import (
    Delivery,
    DeliveryStatus,
    Webhook,
    WebhookCreate,
    WebhookCreated,
)

router = APIRouter(tags=["webhooks"])

WebhookId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.post(
    "/webhooks",
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe the caller's organisation to workflow events (the secret is shown once)",
    responses=AUTH_RESPONSES,
)
async def create_webhook(
    draft: WebhookCreate, principal: CurrentPrincipal, session: SessionDep, request: Request
) -> WebhookCreated:
    settings = request.app.state.settings
    return await webhooks_service.create(
        session,
        principal=principal,
        draft=draft,
        part_secret=settings.secret_key,
        check_addresses=checks_addresses(request.app),
        max_per_org=settings.webhooks_max_per_org,
    )


@router.get(
    "/webhooks",
    summary="The webhooks of the caller's organisation",
    responses=AUTH_RESPONSES,
)
async def list_webhooks(
    principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> Page[Webhook]:
    items = await webhooks_service.list_own(
        session, principal=principal, after=page.position(TEXT_CURSOR), limit=page.limit
    )
    next_cursor = encode_cursor(items[-1].id) if len(items) == page.limit else None
    return Page[Webhook](items=items, next_cursor=next_cursor)


@router.get("/webhooks/{webhook_id}", summary="One webhook", responses=AUTH_RESPONSES)
async def get_webhook(
    webhook_id: WebhookId, principal: CurrentPrincipal, session: SessionDep
) -> Webhook:
    subscription = await webhooks_service.read(session, principal=principal, webhook_id=webhook_id)
    return webhooks_service.to_view(subscription)


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Unsubscribe (pending deliveries are dropped)",
    responses=AUTH_RESPONSES,
)
async def delete_webhook(
    webhook_id: WebhookId, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    await webhooks_service.delete(session, principal=principal, webhook_id=webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    summary="The delivery log: each event sent, its status and every attempt, newest first",
    responses=AUTH_RESPONSES,
)
async def list_deliveries(
    webhook_id: WebhookId,
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
) -> Page[Delivery]:
    rows = await webhooks_service.deliveries(
        session,
        principal=principal,
        webhook_id=webhook_id,
        status=delivery_status,
        after=page.position(TIME_TEXT_CURSOR),
        limit=page.limit,
    )
    next_cursor = (
        encode_cursor(webhooks_service.delivery_cursor(rows[-1]))
        if len(rows) == page.limit
        else None
    )
    return Page[Delivery](
        items=[webhooks_service.to_delivery(r) for r in rows], next_cursor=next_cursor
    )
