"""Helpers for testing libs.common: a small part built with ``create_service_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import httpx
from fastapi import APIRouter, FastAPI
from pydantic_settings import SettingsConfigDict
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncConnection

from libs.common.app import create_service_app
from libs.common.database import create_engine
from libs.common.health import ReadinessCheck
from libs.common.settings import PartSettings


class SampleSettings(PartSettings):
    """A part that exists only in these tests."""

    part: ClassVar[str] = "sample"

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_SAMPLE_", extra="ignore", populate_by_name=True
    )


AppFactory = Callable[..., FastAPI]


def build_app(
    *,
    routers: Sequence[APIRouter] = (),
    readiness_checks: Sequence[ReadinessCheck] = (),
    **settings: Any,
) -> FastAPI:
    """A sample part's app with ``routers``; ``settings`` override SampleSettings fields."""
    return create_service_app(
        SampleSettings(**settings),
        title="Sample",
        description="A part for testing libs.common.",
        routers=routers,
        readiness_checks=readiness_checks,
        configure_process=False,
    )


@asynccontextmanager
async def sample_client(
    database_url: str,
    *,
    metadata: MetaData,
    routers: Sequence[APIRouter],
    fill: Callable[[AsyncConnection], Awaitable[None]] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a running sample part whose database has ``metadata``'s tables (and what
    ``fill`` inserts)."""
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
        if fill is not None:
            await fill(connection)
    await engine.dispose()
    app = build_app(routers=routers, database_url=database_url)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://sample") as client,
    ):
        yield client
