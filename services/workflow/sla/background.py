"""The background work of SLA clocks, live progress and webhooks, as one app lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from services.workflow.live.lifespan import live_lifespan
from services.workflow.sla.timer import sla_lifespan
from services.workflow.webhooks.deliverer import webhooks_lifespan


@asynccontextmanager
async def sla_live_and_webhooks(app: FastAPI) -> AsyncIterator[None]:
    """Run the SLA timer, the live-progress hub and the webhook deliverer while the app runs."""
    async with AsyncExitStack() as stack:
        for lifespan in (sla_lifespan, live_lifespan, webhooks_lifespan):
            await stack.enter_async_context(lifespan(app))
        yield
