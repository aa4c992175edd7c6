"""The exchange part's public API, served under ``/v1``."""

from fastapi import APIRouter

from services.exchange.access import router as access_router
from services.exchange.datasets.router import router as datasets_router
from services.exchange.ledger.router import router as ledger_router
from services.exchange.opendata.router import router as opendata_router
from services.exchange.records.router import router as records_router

router = APIRouter(prefix="/v1", tags=["exchange"])
# Access first: its record query is the hot path, and routes are matched in order.
router.include_router(access_router)
router.include_router(datasets_router)
router.include_router(records_router)
router.include_router(opendata_router)
router.include_router(ledger_router)
