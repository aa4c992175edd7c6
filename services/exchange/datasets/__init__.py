"""The exchange's read copy of the catalogue: ``ExchangeDataset``, ``get_dataset``,
``normalise_subject_key``."""

from services.exchange.datasets.models import DatasetField, ExchangeDataset
from services.exchange.datasets.service import get_dataset, normalise_subject_key

__all__ = ["DatasetField", "ExchangeDataset", "get_dataset", "normalise_subject_key"]
