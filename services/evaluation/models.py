"""The evaluation part's whole schema: the base and every concept's tables."""

from __future__ import annotations

from services.evaluation.base import Base, event_tables
from services.evaluation.cases.models import Case
from services.evaluation.facts.models import (
    ApplicationFact,
    BundleVersionCopy,
    CaseFact,
    ExchangeSeen,
    ItemVersionCopy,
    OrganisationCopy,
    ReviewFact,
)
from services.evaluation.index.models import IndexSystem
from services.evaluation.indicators.models import daily_indicators, processing_histogram
from services.evaluation.reviews.models import Review, ReviewDepartment

__all__ = [
    "ApplicationFact",
    "Base",
    "BundleVersionCopy",
    "Case",
    "CaseFact",
    "ExchangeSeen",
    "IndexSystem",
    "ItemVersionCopy",
    "OrganisationCopy",
    "Review",
    "ReviewDepartment",
    "ReviewFact",
    "daily_indicators",
    "event_tables",
    "processing_histogram",
]
