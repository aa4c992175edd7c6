"""Errors about service items."""

from __future__ import annotations

from libs.common.errors import Conflict, NotFound


class ItemNotFound(NotFound):
    code = "item-not-found"


class ItemVersionNotFound(NotFound):
    code = "item-version-not-found"


class ItemExists(Conflict):
    code = "item-exists"


class ItemRetired(Conflict):
    code = "item-retired"


class NothingToPublish(Conflict):
    code = "nothing-to-publish"
