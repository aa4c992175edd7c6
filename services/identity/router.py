"""The identity part's public API, served under ``/v1``."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["identity"])
