"""Alembic environment of the workflow part."""

from libs.common.migrations import run_alembic_env
from services.workflow.models import Base

run_alembic_env(Base.metadata)
