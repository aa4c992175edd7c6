"""The evaluation part's public API, served under ``/v1``."""

from fastapi import APIRouter

from services.evaluation.cases.router import router as cases_router
from services.evaluation.index.router import router as index_router
from services.evaluation.indicators.router import router as indicators_router
from services.evaluation.reviews.router import router as reviews_router

router = APIRouter(prefix="/v1")
router.include_router(reviews_router)
router.include_router(cases_router)
router.include_router(indicators_router)
router.include_router(index_router)
