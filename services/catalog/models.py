"""The catalog part's whole schema: the base and every concept's tables."""

from __future__ import annotations

from services.catalog.base import Base, event_tables
from services.catalog.datasets.models import Dataset, DatasetVersion

__all__ = ["Base", "Dataset", "DatasetVersion", "event_tables"]
