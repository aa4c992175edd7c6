"""Errors about grants, consents and queries."""

from __future__ import annotations

from libs.common.errors import Conflict, Forbidden, NotFound


class GrantNotFound(NotFound):
    code = "grant-not-found"


class ConsentNotFound(NotFound):
    code = "consent-not-found"


class DatasetNotShared(Forbidden):
    """The catalogue says the dataset is not shared between departments (不予共享)."""

    code = "dataset-not-shared"


class GrantExists(Conflict):
    code = "grant-exists"


class GrantNotPending(Conflict):
    code = "grant-not-pending"


class GrantClosed(Conflict):
    code = "grant-closed"


class ConsentClosed(Conflict):
    code = "consent-revoked"


class SubjectUnknown(Forbidden):
    """The exchange has not (yet) learnt the caller's subject reference from identity."""

    code = "subject-unknown"


class AccessRefused(Forbidden):
    """A query the rules refuse; it was recorded in the ledger before this was raised."""

    code = "access-refused"
