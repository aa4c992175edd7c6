"""The live-progress hub's life: started with the app, and ending every stream at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from services.workflow.live.hub import HistoryHub
from services.workflow.sla.loops import running
from services.workflow.sla.settings import SlaLiveWebhookSettings

log = structlog.get_logger("pingtai.workflow.live")


@asynccontextmanager
async def live_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run this process's history hub while the app runs."""
    settings: SlaLiveWebhookSettings = app.state.settings
    hub = HistoryHub(
        app.state.database, poll_s=settings.live_poll_s, gap_grace_s=settings.live_gap_grace_s
    )
    try:
        await hub.start_at_newest()
    except Exception:  # the database may be away: the hub's loop tries again
        log.warning("live_hub_not_started", exc_info=True)
    app.state.live_hub = hub
    async with running("workflow-live-hub", hub.run, wakeup=hub.wakeup):
        try:
            yield
        finally:
            hub.close()  # ends every open stream
