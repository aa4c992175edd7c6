"""A sample part served by real uvicorn processes in tests: ``tests.common.sample_part:create_app``.

It answers with the process id of the worker that served the request, and writes one row per
``POST /v1/notes`` through ``SessionDep`` (the SQLite write queue and, between processes, the
busy handler).
"""

from __future__ import annotations

import os

from fastapi import APIRouter, FastAPI
from sqlalchemy import String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from libs.common.app import create_service_app
from libs.common.database import SessionDep, new_metadata
from tests.common.conftest import SampleSettings


class Base(DeclarativeBase):
    metadata = new_metadata()


class Note(Base):
    __tablename__ = "note"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_pid: Mapped[int]
    title: Mapped[str] = mapped_column(String(100))


router = APIRouter(prefix="/v1")


@router.post("/notes/{title}", status_code=201)
async def create_note(title: str, session: SessionDep) -> dict[str, int]:
    session.add(Note(title=title, author_pid=os.getpid()))
    return {"pid": os.getpid()}


@router.get("/notes")
async def count_notes(session: SessionDep) -> dict[str, int]:
    count = await session.scalar(select(func.count()).select_from(Note))
    return {"count": int(count or 0), "pid": os.getpid()}


def create_app() -> FastAPI:
    """The sample part, its settings from ``PINGTAI_SAMPLE_*``."""
    return create_service_app(
        SampleSettings(), title="Sample", description="A part served by real processes.",
        routers=[router], configure_process=False,
    )  # fmt: skip
