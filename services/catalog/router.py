"""The catalog part's public API, served under ``/v1``."""

from fastapi import APIRouter

from services.catalog.datasets.router import router as datasets_router

router = APIRouter(prefix="/v1", tags=["catalog"])
router.include_router(datasets_router)
