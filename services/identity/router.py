"""The identity part's public API, served under ``/v1``."""

from fastapi import APIRouter

from services.identity.organisations.router import router as organisations_router
from services.identity.people.router import router as people_router

router = APIRouter(prefix="/v1")
router.include_router(people_router)
router.include_router(organisations_router)
