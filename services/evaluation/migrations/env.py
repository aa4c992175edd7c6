"""Alembic environment of the evaluation part."""

from libs.common.migrations import run_alembic_env
from services.evaluation.models import Base

run_alembic_env(Base.metadata)
