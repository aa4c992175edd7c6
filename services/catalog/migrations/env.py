"""Alembic environment of the catalog part."""

from libs.common.migrations import run_alembic_env
from services.catalog.models import Base

run_alembic_env(Base.metadata)
