"""The portal part's tables: sessions only (DESIGN)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from libs.common.database import new_metadata


class Base(DeclarativeBase):
    """The declarative base of the portal part; its metadata is this part's schema."""

    metadata = new_metadata()


# Imported for their side effect: the tables join Base.metadata (Alembic, tests).
from portal.sessions import models as _session_models  # noqa: E402

__all__ = ["Base", "_session_models"]
