"""Errors of forwarding a query to a department's endpoint: the upstream's fault, 502 or 504."""

from __future__ import annotations

from libs.common.errors import PingtaiError


class FederationError(PingtaiError):
    """The department's endpoint did not give a trustworthy answer."""

    status = 502
    code = "federation-error"
    title = "The department's system did not answer properly"


class FederationNotConfigured(FederationError):
    code = "federation-not-configured"


class FederationUnreachable(FederationError):
    code = "federation-unreachable"


class FederationTimeout(FederationError):
    status = 504
    code = "federation-timeout"
    title = "The department's system did not answer in time"


class FederationResponseRefused(FederationError):
    code = "federation-response-refused"
