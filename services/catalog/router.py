"""The catalog part's public API, served under ``/v1``."""

from fastapi import APIRouter

from services.catalog.bundles.router import router as bundles_router
from services.catalog.datasets.router import router as datasets_router
from services.catalog.items.router import router as items_router

router = APIRouter(prefix="/v1", tags=["catalog"])
router.include_router(datasets_router)
router.include_router(items_router)
router.include_router(bundles_router)
