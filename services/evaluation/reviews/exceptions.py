"""Errors about reviews."""

from __future__ import annotations

from libs.common.errors import Conflict, NotFound


class ReviewNotFound(NotFound):
    code = "review-not-found"


class ApplicationNotReviewable(NotFound):
    """No finished application of the caller's with that id (never says whose it is)."""

    code = "application-not-found"


class ApplicationNotFinished(Conflict):
    code = "application-not-finished"


class ReviewExists(Conflict):
    code = "review-exists"


class IdempotencyKeyReused(Conflict):
    code = "idempotency-key-reused"


class EditWindowClosed(Conflict):
    code = "review-edit-window-closed"
