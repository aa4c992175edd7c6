"""Errors about datasets."""

from __future__ import annotations

from libs.common.errors import Conflict, NotFound


class DatasetNotFound(NotFound):
    code = "dataset-not-found"


class DatasetVersionNotFound(NotFound):
    code = "dataset-version-not-found"


class DatasetExists(Conflict):
    code = "dataset-exists"


class DatasetIsRetired(Conflict):
    code = "dataset-retired"


class NothingToPublish(Conflict):
    code = "dataset-nothing-to-publish"


class DatasetNotPublished(Conflict):
    code = "dataset-not-published"
