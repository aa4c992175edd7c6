"""Errors about organisations and memberships."""

from __future__ import annotations

from libs.common.errors import Conflict, NotFound


class OrganisationNotFound(NotFound):
    code = "organisation-not-found"


class MembershipNotFound(NotFound):
    code = "membership-not-found"


class RegionNotFound(NotFound):
    code = "region-not-found"


class OrganisationExists(Conflict):
    code = "organisation-exists"


class MembershipExists(Conflict):
    code = "membership-exists"
