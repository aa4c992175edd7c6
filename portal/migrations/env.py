"""Alembic environment of the portal part."""

from libs.common.migrations import run_alembic_env
from portal.models import Base

run_alembic_env(Base.metadata)
