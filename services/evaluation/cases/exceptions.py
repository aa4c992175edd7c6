"""Errors about rectification cases."""

from __future__ import annotations

from libs.common.errors import Conflict, NotFound


class CaseNotFound(NotFound):
    code = "case-not-found"


class CaseStateConflict(Conflict):
    """The action does not fit the case's status (e.g. confirming a case with no reply)."""

    code = "case-state-conflict"


class TooManyReopens(Conflict):
    code = "case-reopen-limit"
