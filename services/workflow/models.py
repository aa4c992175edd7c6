"""The workflow part's tables."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from libs.common.database import new_metadata


class Base(DeclarativeBase):
    """The declarative base of the workflow part; its metadata is this part's schema."""

    metadata = new_metadata()
