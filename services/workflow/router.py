"""The workflow part's public API, served under ``/v1``."""

from fastapi import APIRouter

from services.workflow.applications.router import router as applications_router
from services.workflow.live.router import router as live_router
from services.workflow.sla.router import router as sla_router
from services.workflow.tasks.router import decisions_router
from services.workflow.tasks.router import router as tasks_router
from services.workflow.webhooks.router import router as webhooks_router

router = APIRouter(prefix="/v1", tags=["workflow"])
# Tried in this order per request: decisions, then submissions (the applications router's
# first route), before the rest.
router.include_router(decisions_router)
router.include_router(applications_router)
router.include_router(tasks_router)
router.include_router(sla_router)
router.include_router(live_router)
router.include_router(webhooks_router)
