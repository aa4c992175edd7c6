"""Hosted records, their import and versions; ``RecordSource`` reads hosted and federated alike."""

from services.exchange.records.sources import RecordSource, RecordSourceDep

__all__ = ["RecordSource", "RecordSourceDep"]
