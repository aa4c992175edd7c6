"""The daily indicator rows and the processing-time histogram, per scope.

A scope is ``platform`` (id ``""``), ``department`` (an organisation id), ``region`` (a GB/T
2260 code; counted once per application in its own region and every region above) or ``item``
(a service item id). Both tables are sums of the facts' contributions, updated by deltas.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Index, Integer, String, Table

from services.evaluation.base import Base
from services.evaluation.indicators.counters import COUNTERS

daily_indicators = Table(
    "evaluation_indicator_daily",
    Base.metadata,
    Column("scope_kind", String(16), primary_key=True),
    Column("scope_id", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in COUNTERS),
    Index("ix_evaluation_indicator_daily_kind_day", "scope_kind", "day"),
)

processing_histogram = Table(
    "evaluation_processing_histogram",
    Base.metadata,
    Column("scope_kind", String(16), primary_key=True),
    Column("scope_id", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("working_days", Integer, primary_key=True),
    Column("applications", BigInteger, nullable=False, server_default="0"),
    Index("ix_evaluation_processing_histogram_kind_day", "scope_kind", "day"),
)

# One row (id 1): a number every projection transaction that changes the daily rows (or an
# organisation copy) increments. A ranking computed from generation g is stored only while the
# generation is still g, so a ranking computed while a batch committed is never kept.
indicator_generation = Table(
    "evaluation_indicator_generation",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("generation", BigInteger, nullable=False, server_default="0"),
)
