"""Errors about bundles."""

from __future__ import annotations

from libs.common.errors import Conflict, NotFound


class BundleNotFound(NotFound):
    code = "bundle-not-found"


class BundleVersionNotFound(NotFound):
    code = "bundle-version-not-found"


class BundleExists(Conflict):
    code = "bundle-exists"


class BundleRetired(Conflict):
    code = "bundle-retired"


class NothingToPublish(Conflict):
    code = "nothing-to-publish"
