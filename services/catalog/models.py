"""The catalog part's whole schema: the base and every concept's tables."""

from __future__ import annotations

from services.catalog.base import Base, event_tables
from services.catalog.bundles.models import Bundle, BundleVersion, BundleVersionItem
from services.catalog.datasets.models import Dataset, DatasetVersion
from services.catalog.items.models import ServiceItem, ServiceItemTerm, ServiceItemVersion

__all__ = [
    "Base",
    "Bundle",
    "BundleVersion",
    "BundleVersionItem",
    "Dataset",
    "DatasetVersion",
    "ServiceItem",
    "ServiceItemTerm",
    "ServiceItemVersion",
    "event_tables",
]
