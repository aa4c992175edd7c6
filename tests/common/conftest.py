"""Helpers for testing libs.common: a small part built with ``create_service_app``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from fastapi import APIRouter, FastAPI
from pydantic_settings import SettingsConfigDict

from libs.common.app import create_service_app
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
