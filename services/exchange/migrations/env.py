"""Alembic environment of the exchange part."""

from libs.common.migrations import run_alembic_env
from services.exchange.models import Base

run_alembic_env(Base.metadata)
