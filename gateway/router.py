"""The gateway part's public API, served under ``/v1``."""

from fastapi import APIRouter

from gateway.applications.router import router as applications_router
from gateway.developers.router import router as developers_router
from gateway.plans.router import router as plans_router
from gateway.usage.router import router as usage_router

router = APIRouter(prefix="/v1")
router.include_router(plans_router)
router.include_router(applications_router)
router.include_router(usage_router)
router.include_router(developers_router)
