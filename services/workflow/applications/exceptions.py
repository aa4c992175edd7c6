"""Domain errors of applications and tasks, each with its HTTP status."""

from __future__ import annotations

from libs.common.errors import Conflict, InvalidInput, NotFound, PingtaiError


class ApplicationNotFound(NotFound):
    code = "application-not-found"


class ApplicationConflict(Conflict):
    """A new application's row could not be inserted (an id taken): the client may retry."""

    code = "application-conflict"


class OfferingNotFound(NotFound):
    code = "service-not-found"


class OfferingRetired(Conflict):
    code = "service-retired"


class CatalogueNotSynchronised(PingtaiError):
    """A bundle names an item version workflow has not received yet from catalog's events."""

    status = 503
    code = "catalogue-not-synchronised"
    headers = {"Retry-After": "5"}


class NotEligible(PingtaiError):
    """The caller may not apply for this offering (applicant type)."""

    status = 403
    code = "not-eligible"


class IdempotencyKeyReused(InvalidInput):
    """The same Idempotency-Key was first used with another body."""

    code = "idempotency-key-reused"
    title = "This Idempotency-Key was used with another request"


class WrongStatus(Conflict):
    """The application's status does not allow this now."""

    code = "wrong-status"


class SupplementAlreadyRequested(Conflict):
    code = "supplement-already-requested"
    title = "The single supplement round was used already"


class MaterialNotFound(NotFound):
    code = "material-not-found"


class MaterialNotUploadable(Conflict):
    code = "material-not-uploadable"


class UploadTooSlow(PingtaiError):
    """The body arrived slower than the minimum rate (a connection held open for nothing)."""

    status = 408
    code = "upload-too-slow"


class UnsupportedMediaType(PingtaiError):
    status = 415
    code = "unsupported-media-type"


class TaskNotFound(NotFound):
    code = "task-not-found"


class TaskConflict(Conflict):
    """Another officer (or another request) changed the task first."""

    code = "task-conflict"
