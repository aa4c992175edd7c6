"""Alembic environment of the gateway part."""

from gateway.models import Base
from libs.common.migrations import run_alembic_env

run_alembic_env(Base.metadata)
