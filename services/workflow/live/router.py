"""Server-sent event streams of live progress (text/event-stream)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from sse_starlette import EventSourceResponse

from libs.common.auth import AUTH_RESPONSES, CurrentPrincipal, Principal
from libs.common.errors import InvalidInput
from services.workflow.live import service as live_service
from services.workflow.live.hub import HistoryHub
from services.workflow.live.repository import StreamScope
from services.workflow.sla.settings import SlaLiveWebhookSettings

router = APIRouter(tags=["live progress"])

_DIGITS = re.compile(r"^[0-9]{1,18}$")
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "A stream of server-sent events: each an application's history step, ``id`` the "
            "step's id (send it back as ``Last-Event-ID`` to resume), ``data`` its JSON; "
            "comment lines keep the connection alive."
        ),
        "content": {
            "text/event-stream": {
                "example": (
                    'id: 42\ndata: {"application_id": "9f1c...", "id": 42, "action": '
                    '"task.completed", "to_status": "in_progress", ...}\n\n'
                )
            }
        },
    },
    **AUTH_RESPONSES,
}


async def _last_event_id(
    last_event_id_header: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="The id of the last event received: what came after is sent first.",
        ),
    ] = None,
    last_event_id: Annotated[
        int | None,
        Query(ge=0, le=10**18, description="The same, for clients that cannot set headers."),
    ] = None,
) -> int | None:
    if last_event_id_header is None or not last_event_id_header.strip():
        return last_event_id
    value = last_event_id_header.strip()
    if not _DIGITS.match(value):
        raise InvalidInput.for_field(
            "Last-Event-ID", "must be the id of an event of this stream", location="header"
        )
    return int(value)


LastEventId = Annotated[int | None, Depends(_last_event_id)]


def _respond(
    request: Request, principal: Principal, scope: StreamScope, last_event_id: int | None
) -> EventSourceResponse:
    settings: SlaLiveWebhookSettings = request.app.state.settings
    hub: HistoryHub = request.app.state.live_hub
    events = live_service.stream(
        request.app.state.database,
        hub,
        scope=scope,
        last_event_id=last_event_id,
        replay_limit=settings.live_replay_limit,
        retry_ms=settings.live_retry_ms,
    )
    # The stream ends when the token does: the client reconnects with a fresh one.
    return EventSourceResponse(
        live_service.until(events, principal.expires_at), ping=settings.live_keepalive_s
    )


@router.get(
    "/applications/{application_id}/events",
    summary="Follow one application live (its applicant, their enterprise, its departments)",
    response_class=EventSourceResponse,
    responses=STREAM_RESPONSES,
)
async def follow_application(
    request: Request,
    application_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    principal: CurrentPrincipal,
    last_event_id: LastEventId,
) -> EventSourceResponse:
    scope = await live_service.application_scope(
        request.app.state.database, principal=principal, application_id=application_id
    )
    return _respond(request, principal, scope, last_event_id)


@router.get(
    "/me/events",
    summary="Follow every application the caller submitted, live",
    response_class=EventSourceResponse,
    responses=STREAM_RESPONSES,
)
async def follow_my_applications(
    request: Request, principal: CurrentPrincipal, last_event_id: LastEventId
) -> EventSourceResponse:
    return _respond(request, principal, live_service.applicant_scope(principal), last_event_id)


@router.get(
    "/inbox/events",
    summary="Follow the caller's department inbox live (officers, department admins)",
    response_class=EventSourceResponse,
    responses=STREAM_RESPONSES,
)
async def follow_inbox(
    request: Request, principal: CurrentPrincipal, last_event_id: LastEventId
) -> EventSourceResponse:
    return _respond(request, principal, live_service.inbox_scope(principal), last_event_id)
