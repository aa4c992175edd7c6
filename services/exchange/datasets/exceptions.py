"""Errors about the exchange's datasets."""

from __future__ import annotations

from libs.common.errors import Conflict, NotFound


class DatasetNotFound(NotFound):
    code = "dataset-not-found"


class DatasetNotHosted(Conflict):
    code = "dataset-not-hosted"


class DatasetRetired(Conflict):
    code = "dataset-retired"
